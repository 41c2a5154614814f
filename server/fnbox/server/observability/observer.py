"""What happens after every invocation the dispatcher runs: metrics, usage, logs."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from fnbox.executor import types as ex
from fnbox.executor.errors import WorkerCrashed
from fnbox.server.dispatch import Target
from fnbox.server.errors import rpc_status_of
from fnbox.server.observability.entries import Finished, is_error
from fnbox.server.observability.logs import FunctionLogs
from fnbox.server.observability.usage import UsageMeter
from fnbox.telemetry.histograms import histogram
from opentelemetry import metrics, trace

__all__ = ["RUN_LABEL", "InvocationObserver"]

log = logging.getLogger(__name__)

# The `function` label of unsaved code (RunFunction).
RUN_LABEL = "(run)"

meter = metrics.get_meter("fnbox.server")
# fnbox.invocations is counted here and read by the SDK when a reader collects (an observable
# counter): a dict increment per invocation instead of a synchronous Counter.add, which cost
# ~6 µs (a Measurement, attribute cleaning and hashing, a lock) on every call.
_invocation_counts: dict[tuple[str, str, str], int] = {}


def _observe_invocations(_options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
    for (function, function_type, outcome), count in list(_invocation_counts.items()):
        yield metrics.Observation(
            count, {"function": function, "type": function_type, "outcome": outcome}
        )


_invocations = meter.create_observable_counter(
    "fnbox.invocations",
    callbacks=[_observe_invocations],
    unit="1",
    description="Function invocations by function, type, outcome.",
)
# Ours, not the SDK's Histogram (whose record cost 8-12 µs per invocation): ~0.3 µs, exported
# the same way (fnbox.telemetry.histograms).
_duration = histogram(
    "fnbox.invocation.duration",
    scope="fnbox.server",
    unit="s",
    description="Execution time of function invocations (as the worker measured it).",
    labels=("function", "type"),
    bounds=(
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        10.0,
    ),
)


class InvocationObserver:
    """Called by the dispatcher with each finished invocation; never raises."""

    def __init__(self, *, usage: UsageMeter, logs: FunctionLogs) -> None:
        self._usage = usage
        self._logs = logs

    def __call__(
        self,
        spec: ex.FunctionSpec,
        invocation: ex.Invocation,
        result: ex.InvocationResult,
        target: Target | None,
    ) -> None:
        try:
            self._observe(spec, invocation, result, target)
        except Exception:
            log.exception("observing an invocation of %s failed", spec.key)

    def fault(
        self,
        spec: ex.FunctionSpec,
        invocation: ex.Invocation,
        error: WorkerCrashed,
        target: Target | None,
        duration_ms: float,
    ) -> None:
        """An invocation whose worker died under it: counted under its reason
        (WORKER_CRASHED), billed for the time it held the worker, and kept in the function's
        logs as an error with the status its caller got."""
        # A placeholder result: what the worker did before it died went with it.
        result = ex.InvocationResult(ex.Outcome.ERROR, duration_ms=duration_ms)
        try:
            self._observe(spec, invocation, result, target, error)
        except Exception:
            log.exception("observing a failed invocation of %s failed", spec.key)

    def _observe(
        self,
        spec: ex.FunctionSpec,
        invocation: ex.Invocation,
        result: ex.InvocationResult,
        target: Target | None,
        fault: WorkerCrashed | None = None,
    ) -> None:
        function = target.function if target is not None else None
        label = function.id if function is not None else RUN_LABEL
        function_type = spec.type.value
        outcome = _outcome_label(result) if fault is None else fault.reason
        key = (label, function_type, outcome)
        _invocation_counts[key] = _invocation_counts.get(key, 0) + 1
        if fault is None:  # the worker's own measure of its run
            _duration.record(result.duration_ms / 1000, (label, function_type))
        if target is None or function is None:
            return
        now = time.time()
        self._usage.record(
            function.workspace_id,
            function.id,
            at=now,
            duration_ms=result.duration_ms,
            error=is_error(result.outcome),
        )
        kind = self._logs.kind_of(function.id, result.outcome)
        if kind is None:
            return
        status = None if fault is None else rpc_status_of(fault)
        self._logs.record(
            Finished(spec, invocation, result, target, _trace_id(), now, status), kind
        )


def _trace_id() -> str:
    """The current trace's id, when it is recorded (and so can be found); else ""."""
    span_context = trace.get_current_span().get_span_context()
    sampled = span_context.is_valid and span_context.trace_flags.sampled
    return format(span_context.trace_id, "032x") if sampled else ""


def _outcome_label(result: ex.InvocationResult) -> str:
    """A batch that ran (OK) is labelled with its events' outcome when they all share one:
    a one-event batch whose handler threw ValidationError counts as VALIDATION_ERROR."""
    if result.outcome is ex.Outcome.OK and result.batch:
        outcomes = {entry.outcome for entry in result.batch}
        if len(outcomes) == 1:
            return outcomes.pop().value
    return result.outcome.value
