"""Fixtures for the bus tests: every test runs against the SQLite bus and NATS JetStream.

``bus_target`` says where a bus lives (URL + a namespace unique to the test); ``bus`` is one
started bus on it. NATS is expected at 127.0.0.1:4222: without it the NATS cases are skipped,
except under ``CI=true`` where its absence fails them. Each NATS case deletes its namespace's
stream afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fnbox.bus import Bus, BusUnavailable, open_bus
from fnbox.bus.jetstream import JetStreamBus

NATS_URL = "nats://127.0.0.1:4222"


@dataclass(frozen=True)
class BusTarget:
    """Where a test's bus lives; :meth:`open` gives another, independent client of it."""

    kind: str
    url: str
    namespace: str

    def open(self, namespace: str | None = None) -> Bus:
        return open_bus(self.url, namespace=namespace or self.namespace)


async def _nats_reachable() -> str | None:
    probe = JetStreamBus([NATS_URL], namespace="fnbox_probe")
    try:
        await probe.start()
    except BusUnavailable as exc:
        return str(exc)
    await probe.delete_namespace()
    await probe.close()
    return None


@pytest.fixture(params=["sqlite", "nats"])
async def bus_target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BusTarget]:
    namespace = f"test_{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        # A short poll interval: some tests use two clients of one file, like two processes.
        yield BusTarget("sqlite", f"sqlite:///{tmp_path / 'bus.db'}?poll_interval=0.02", namespace)
        return
    problem = await _nats_reachable()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"NATS JetStream is required under CI: {problem}")
        pytest.skip(f"NATS JetStream not reachable at {NATS_URL}: {problem}")
    yield BusTarget("nats", NATS_URL, namespace)
    cleanup = JetStreamBus([NATS_URL], namespace=namespace)
    await cleanup.start()
    await cleanup.delete_namespace()
    await cleanup.close()


@pytest.fixture
async def bus(bus_target: BusTarget) -> AsyncIterator[Bus]:
    async with bus_target.open() as opened:
        yield opened
