"""Waiting for a condition with a deadline: the tests' substitute for sleeping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

__all__ = ["eventually"]


async def eventually(
    check: Callable[[], Awaitable[bool] | bool],
    *,
    within: float = 10.0,
    what: str | Callable[[], str] = "the condition",
    every: float = 0.02,
) -> None:
    """Poll ``check`` (plain or async) every ``every`` seconds until it returns true; fail
    after ``within`` seconds naming ``what`` (a callable is asked only then, e.g. for logs)."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            said = what if isinstance(what, str) else what()
            raise AssertionError(f"timed out after {within:g} s waiting for {said}")
        await asyncio.sleep(every)
