from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from fnbox.client import FnboxClient, RetryPolicy
from fnbox.functions.v1 import service_pb2_grpc

from tests.client.scripted_server import GOOD_TOKEN, ScriptedFunctions


@dataclass
class Scripted:
    servicer: ScriptedFunctions
    target: str


@pytest.fixture
async def scripted() -> AsyncIterator[Scripted]:
    """A real grpc.aio server on port 0 serving :class:`ScriptedFunctions`."""
    server = grpc.aio.server()
    servicer = ScriptedFunctions()
    service_pb2_grpc.add_FunctionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield Scripted(servicer, f"127.0.0.1:{port}")
    finally:
        await server.stop(grace=None)


FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.001, max_backoff=0.005)


@pytest.fixture
async def client(scripted: Scripted) -> AsyncIterator[FnboxClient]:
    async with FnboxClient(scripted.target, GOOD_TOKEN, timeout=10, retry=FAST_RETRY) as c:
        yield c
