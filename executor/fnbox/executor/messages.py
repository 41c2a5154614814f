"""Translation between the executor's plain data (types.py) and protocol frames."""

from __future__ import annotations

import functools
from typing import Any

import orjson
from fnbox.executor.codec import Frame
from fnbox.executor.errors import ProtocolError
from fnbox.executor.policy import FunctionLimits
from fnbox.executor.settings import ExecutorSettings
from fnbox.executor.types import (
    EventResult,
    FunctionSpec,
    Invocation,
    InvocationResult,
    OutboundRequest,
    Outcome,
    SyntaxProblem,
    UserError,
)

# Room for the invoke frame's own header next to the segments.
HEADER_ALLOWANCE = 4096


def load_frame(
    spec: FunctionSpec, limits: FunctionLimits, settings: ExecutorSettings
) -> tuple[dict[str, Any], list[bytes]]:
    header = {
        "t": "load",
        "type": str(spec.type),
        "filename": "function.js",
        "limits": {
            "timeout_ms": round(limits.timeout_s * 1000),
            "memory_mib": limits.memory_mib,
            "heap_mib": settings.heap_mib,
            "network": spec.network,
            "egress_allow": list(settings.egress_allow),
            "egress_proxy": settings.egress_proxy,
            "max_log_bytes": settings.max_log_bytes,
            "max_events": settings.max_events,
            "max_result_bytes": settings.max_result_bytes,
            "max_frame_bytes": settings.max_frame_bytes,
        },
    }
    return header, [spec.code.encode()]


def invoke_segments(invocation: Invocation) -> list[bytes]:
    if invocation.kind == "request":
        req = invocation.request
        if req is None:
            raise ValueError("a 'request' invocation needs Invocation.request")
        meta = orjson.dumps({"method": req.method, "url": req.url, "headers": req.headers})
        return [meta, req.body, invocation.settings]
    return [invocation.payload, invocation.settings]


def user_error(raw: Any) -> UserError | None:
    if not isinstance(raw, dict):
        return None
    return UserError(
        name=str(raw.get("name", "Error")),
        message=str(raw.get("message", "")),
        stack=str(raw.get("stack", "")),
    )


def syntax_problem(raw: Any) -> SyntaxProblem | None:
    if not isinstance(raw, dict):
        return None
    return SyntaxProblem(
        message=str(raw.get("message", "")),
        line=int(raw.get("line") or 0),
        column=int(raw.get("column") or 0),
    )


_OUTCOMES = {outcome.value: outcome for outcome in Outcome}
# A bound on the entries a result's runs announce (no batch has more events than its invoke
# frame has bytes, 8 MiB by default), so that a corrupt run length cannot exhaust memory.
MAX_BATCH_ENTRIES = 16 * 1024 * 1024


def _event_result(key: tuple[Any, Any, Any, Any], returned: bytes | None) -> EventResult:
    outcome, status, error_message, error_name = key
    return EventResult(
        _OUTCOMES[outcome], int(status), str(error_message), returned, str(error_name)
    )


def _batch_from_runs(
    runs: list[Any], segments: list[bytes], pos: int
) -> tuple[list[EventResult], int]:
    """Entries from ``batch_runs``; the entries of a run without returned events are one
    shared (frozen) EventResult, so 200 x OK costs one object, not 200."""
    batch: list[EventResult] = []
    for run in runs:
        # [count, outcome, status, error_message, has_returned, error_name]; older workers
        # sent the first five.
        count, outcome, status, error_message, has_returned = run[:5]
        error_name = run[5] if len(run) > 5 else ""
        if not isinstance(count, int) or count < 0 or len(batch) + count > MAX_BATCH_ENTRIES:
            raise ProtocolError(f"bad batch run length {count!r}")
        key = (outcome, status, error_message, error_name)
        if has_returned:
            batch.extend(_event_result(key, segments[pos + i]) for i in range(count))
            pos += count
        else:
            batch.extend([_event_result(key, None)] * count)
    return batch, pos


def _batch_from_entries(
    entries: list[Any], segments: list[bytes], pos: int
) -> tuple[list[EventResult], int]:
    """Entries from the older per-entry ``batch`` list (equal entries share one instance)."""
    batch: list[EventResult] = []
    shared: dict[tuple[Any, Any, Any, Any], EventResult] = {}
    for entry in entries:
        key = (
            entry["outcome"],
            entry.get("status", 0),
            entry.get("error_message", ""),
            entry.get("error_name", ""),
        )
        if entry.get("has_returned"):
            batch.append(_event_result(key, segments[pos]))
            pos += 1
            continue
        item = shared.get(key)
        if item is None:
            item = shared[key] = _event_result(key, None)
        batch.append(item)
    return batch, pos


def decode_result(frame: Frame, worker_pid: int) -> InvocationResult:
    """Turn a ``result`` frame into an InvocationResult; segments stay opaque bytes."""
    h = frame.header
    try:
        outcome = _OUTCOMES[h["outcome"]]
        n_events, n_objects = int(h.get("n_events", 0)), int(h.get("n_objects", 0))
        segments = frame.segments
        pos = n_events + n_objects
        returned = None
        if h.get("has_returned"):
            returned = segments[pos]
            pos += 1
        runs = h.get("batch_runs")
        if runs is not None:
            batch, pos = _batch_from_runs(runs, segments, pos)
        elif entries := h.get("batch"):
            batch, pos = _batch_from_entries(entries, segments, pos)
        else:
            batch = []
        if pos != len(segments):
            raise ProtocolError(f"result announces {pos} segments but carries {len(segments)}")
        # Most results have no requests, logs or error: no comprehension (a function call
        # each) and no look-up for them.
        raw_requests = h.get("requests")
        requests = (
            [
                OutboundRequest(
                    method=str(r.get("method", "")),
                    url=str(r.get("url", "")),
                    status=int(r.get("status") or 0),
                    duration_ms=float(r.get("duration_ms") or 0),
                    error=str(r.get("error") or ""),
                    start_ms=float(r.get("start_ms") or 0),
                )
                for r in raw_requests
            ]
            if raw_requests
            else []
        )
        raw_logs = h.get("logs")
        raw_error = h.get("error")
        return InvocationResult(
            outcome=outcome,
            events=segments[:n_events] if n_events else [],
            objects=segments[n_events : n_events + n_objects] if n_objects else [],
            returned=returned,
            batch=batch,
            error=None if raw_error is None else user_error(raw_error),
            logs=[str(line) for line in raw_logs] if raw_logs else [],
            logs_truncated=bool(h.get("logs_truncated")),
            requests=requests,
            duration_ms=float(h.get("duration_ms") or 0),
            worker_pid=worker_pid,
            handlers=_handlers(h.get("handlers") or ""),
        )
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise ProtocolError(f"malformed result frame: {exc!r}") from exc


@functools.lru_cache(maxsize=256)
def _handlers(names: str) -> tuple[str, ...]:
    """``"onTrack,onBatch"`` → a tuple (a worker sends the same string with every result)."""
    return tuple(name for name in str(names).split(",") if name)


def timeout_result(limits: FunctionLimits, worker_pid: int, elapsed_ms: float) -> InvocationResult:
    limit_ms = round(limits.timeout_s * 1000)
    return InvocationResult(
        outcome=Outcome.TIMEOUT,
        error=UserError(
            name="TimeoutError", message=f"Function execution exceeded the {limit_ms} ms limit"
        ),
        duration_ms=elapsed_ms,
        worker_pid=worker_pid,
    )
