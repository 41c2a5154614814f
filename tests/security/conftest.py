"""The security suite: hostile functions through the public gRPC API against a real control
service with real sandboxed workers, each attack served alongside benign traffic.

One server per module (a module may set ``EXECUTOR``, overrides of the executor settings).
Limits are small so that bombs go off fast; the benign function keeps the 5 s default.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.security.helpers import Server

BASE_EXECUTOR: dict[str, Any] = {
    "warm_workers": 2,
    "egress_allow": [],
    "maintenance_interval_s": 0.2,
    "kill_grace_s": 0.2,
    "idle_cpu_max_ms": 300,
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    executor = BASE_EXECUTOR | getattr(request.module, "EXECUTOR", {})
    started = await Server.start(tmp_path_factory.mktemp("security"), **executor)
    try:
        yield started
    finally:
        await started.stop()
