"""Fixtures of the end-to-end tests: backends, the running system, the HTTP sink, a client."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fnbox.client import FnboxClient
from fnbox.server.app import ControlService
from fnbox.server.settings import GrpcSettings, Settings

from tests.e2e.backends import Backend, backend
from tests.e2e.sink import Sink
from tests.e2e.system import System, base_env

BACKENDS = ["embedded", "postgres+nats"]


@pytest.fixture(scope="module", params=BACKENDS)
def backend_env(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if (
        request.param == "postgres+nats"
        and importlib.util.find_spec("fnbox.server.store.postgres") is None
    ):
        pytest.skip("the PostgreSQL store (fnbox.server.store.postgres) is not in this tree yet")
    with backend(request.param) as chosen:
        yield chosen


@pytest.fixture(scope="module")
def shared_system(
    backend_env: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    """One running system per test module and backend (starting one costs seconds: up to
    five processes). Tests stay independent by making their own functions, instances, sinks
    and workspaces, and by never listing workspace-wide resources."""
    data_dir = tmp_path_factory.mktemp(f"system-{backend_env.name.replace('+', '-')}") / "data"
    running = System(data_dir, base_env(backend_env.env), scale_out=backend_env.scale_out)
    try:
        asyncio.run(running.start())  # no loop runs here: each test has its own
        yield running
    finally:
        running.stop()


@pytest.fixture
async def system(shared_system: System) -> System:
    """The module's system, with every process running (a test may have killed some)."""
    await shared_system.restart()
    return shared_system


@pytest.fixture
async def control(tmp_path: Path) -> AsyncIterator[ControlService]:
    """A control service in this process (for tests of the pipeline's parts in-process)."""
    service = ControlService(Settings(data_dir=tmp_path, grpc=GrpcSettings(listen="127.0.0.1:0")))
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with Sink() as running:
        yield running


@pytest.fixture
async def client(system: System) -> AsyncIterator[FnboxClient]:
    async with FnboxClient(system.target, system.token) as connected:
        yield connected


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: minutes-long load tests; run with -m slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="slow load test: run with -m slow")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)
