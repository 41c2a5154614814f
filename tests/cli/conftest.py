from __future__ import annotations

import socket

import pytest

from tests.client.conftest import scripted

__all__ = ["scripted"]


@pytest.fixture
def unused_port() -> int:
    """A local port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
