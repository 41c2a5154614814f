"""One control service for the whole conformance suite (session scope, warm workers), and one
`fnbox serve` process tree (gateway and delivery included) for the pipeline and example tests.

Every test module runs in the session event loop (``pytestmark`` in each module), so the
server, its worker pool and the client are started once. Tests isolate themselves by making
their own functions and instances; none lists workspace-wide resources.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from fnbox.client import FnboxClient
from fnbox.server.app import ControlService
from fnbox.server.settings import load_settings

from tests.conformance.harness import Conformance
from tests.e2e.system import System, base_env


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def control(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ControlService]:
    data_dir: Path = tmp_path_factory.mktemp("conformance")
    settings = load_settings(
        data_dir=data_dir,
        grpc={"listen": "127.0.0.1:0"},
        # 127.0.0.1 is allowed so that functions can reach the tests' local HTTP servers.
        executor={"warm_workers": 2, "egress_allow": ["127.0.0.1/32"], "max_workers": 32},
        # Logs and usage are written to the store in the background: flush often.
        telemetry={"logs_flush_s": 0.1, "usage_flush_s": 0.1},
    )
    service = ControlService(settings, tracer_provider=None)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def conformance(control: ControlService) -> AsyncIterator[Conformance]:
    token = (Path(control.settings.data_dir) / "admin.token").read_text().strip()
    async with FnboxClient(control.address, token) as client:
        yield Conformance(client, control.address, token)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    """`fnbox serve` (embedded backend) with the pipeline harness's short retry delays and
    127.0.0.1 allowed in the form the examples' READMEs give."""
    env = base_env({"FNBOX_EXECUTOR__EGRESS_ALLOW": "127.0.0.1/32"})
    running = System(tmp_path_factory.mktemp("served") / "data", env)
    try:
        await running.start()
        yield running
    finally:
        running.stop()
