"""Executor test helpers: pools over real Node workers and the misbehaving fixture worker."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from fnbox.executor import (
    ExecutorSettings,
    FunctionSpec,
    FunctionType,
    Invocation,
    InvocationResult,
    WorkerPool,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE_WORKER = FIXTURES / "fixture_worker.js"

PoolFactory = Callable[..., Awaitable[WorkerPool]]


def fixture_settings(modes: str = "", **overrides: Any) -> ExecutorSettings:
    """Settings for the fixture worker (real worker.js over fake_sandbox.js unless ``modes``
    says otherwise); no warm pool unless asked, so that tests spawn only what they use."""
    env = {"FNBOX_FIXTURE": modes} if modes else {}
    env |= overrides.pop("worker_env", {})
    base: dict[str, Any] = {"warm_workers": 0, "close_grace_s": 5.0}
    return ExecutorSettings(worker_script=FIXTURE_WORKER, worker_env=env, **(base | overrides))


@pytest.fixture
async def pool_factory() -> AsyncIterator[PoolFactory]:
    """``await pool_factory(settings, start=True)``; every pool is closed at teardown."""
    pools: list[WorkerPool] = []

    async def make(settings: ExecutorSettings, *, start: bool = True) -> WorkerPool:
        pool = WorkerPool(settings)
        pools.append(pool)
        if start:
            await pool.start()
        return pool

    yield make
    for pool in pools:
        await pool.close(grace_s=0)


def spec(
    code: str,
    key: str = "fn/1",
    type: FunctionType = FunctionType.DESTINATION,
    **kw: Any,
) -> FunctionSpec:
    return FunctionSpec(key=key, type=type, code=code, **kw)


def track(**fields: Any) -> Invocation:
    event = {"type": "track", "event": "Test", "userId": "u1", **fields}
    return Invocation(kind="event", payload=orjson.dumps(event))


async def invoke(
    pool: WorkerPool, fn: FunctionSpec, inv: Invocation | None = None
) -> InvocationResult:
    return await pool.invoke(fn, inv or track())


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != b"Z"


def node_available() -> bool:
    return os.access(ExecutorSettings().node_path, os.X_OK)
