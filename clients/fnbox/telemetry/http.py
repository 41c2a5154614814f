"""The webhook gateway's HTTP spans and request metrics.

Each webhook gets a SERVER span that starts its trace: a ``traceparent`` sent by the caller is
linked, not continued (the endpoint is public; callers do not own fnbox's traces). 5xx answers
are the platform's faults and mark the span ERROR; 4xx are the caller's and do not. When the
process records no spans at all (sampler ``ALWAYS_OFF``: no exporter), the webhook still gets
its own trace context (fresh ids, not sampled) but no span object.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from fnbox.telemetry.histograms import histogram
from fnbox.telemetry.propagation import link_of
from opentelemetry import context, metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import (
    NonRecordingSpan,
    ProxyTracerProvider,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

__all__ = ["observe"]

tracer = trace.get_tracer("fnbox.gateway")
meter = metrics.get_meter("fnbox.gateway")

# Counted here and read when a reader collects (an observable counter): a dict increment per
# request instead of a synchronous Counter.add (~6 µs: a Measurement, attribute hashing, a lock).
_request_counts: dict[int, int] = {}


def _observe_requests(_options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
    for status, count in list(_request_counts.items()):
        yield metrics.Observation(count, {"status": str(status)})


_requests = meter.create_observable_counter(
    "fnbox.gateway.requests",
    callbacks=[_observe_requests],
    unit="1",
    description="Webhook requests answered, by status code.",
)
_duration = histogram(
    "fnbox.gateway.request.duration",
    scope="fnbox.gateway",
    labels=("status",),
    unit="s",
    description="Time to answer a webhook request (stored durably on the bus for 202).",
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
    ),
)
_ids = RandomIdGenerator()
_UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)

Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


async def observe(
    request: web.Request, handler: Handler, route: str, instance: str
) -> web.StreamResponse:
    """``handler(request, instance)``'s answer, traced and counted: ``route`` is the matched
    route's pattern (the path when none matched), ``instance`` the ``{instance}`` it holds."""
    start = time.perf_counter()
    if _records_nothing():
        # Nothing is ever recorded: the webhook's trace is a context of fresh ids (what the
        # SDK would make, without building a span nobody sees). The answer runs in a task of
        # its own (aiohttp's, per request), whose context copy this changes.
        token = context.attach(trace.set_span_in_context(_unrecorded_root(), Context()))
        try:
            return await _answer(request, handler, instance, start, None)
        finally:
            context.detach(token)
    link = link_of(request.headers)
    with tracer.start_as_current_span(
        f"{request.method} {route}",
        kind=SpanKind.SERVER,
        context=Context(),  # a new trace per webhook
        links=[link] if link is not None else [],
        attributes={
            "http.request.method": request.method,
            "http.route": route,
            "url.path": request.path,
            "fnbox.instance": instance,
        },
        # An HTTPException is an answer (a 404 is the caller's, not ours): _answer records
        # the status, and the exception only of what was not answered.
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        return await _answer(request, handler, instance, start, span)


_sampler_off: list[bool] = []  # whether the (set, final) tracer provider samples nothing


def _records_nothing() -> bool:
    if _sampler_off:
        return _sampler_off[0]
    provider = trace.get_tracer_provider()
    off = getattr(provider, "sampler", None) is ALWAYS_OFF
    if not isinstance(provider, ProxyTracerProvider):
        _sampler_off.append(off)  # a process's tracer provider is set once
    return off


async def _answer(
    request: web.Request, handler: Handler, instance: str, start: float, span: trace.Span | None
) -> web.StreamResponse:
    """``handler``'s answer, its status counted (and set on ``span`` when there is one)."""
    status = 500
    try:
        response = await handler(request, instance)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except Exception as exc:
        if span is not None:
            span.record_exception(exc)
        raise
    finally:
        if span is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
        _count(status, start)


def _count(status: int, start: float) -> None:
    _request_counts[status] = _request_counts.get(status, 0) + 1
    _duration.record(time.perf_counter() - start, (str(status),))


def _unrecorded_root() -> NonRecordingSpan:
    return NonRecordingSpan(
        SpanContext(
            trace_id=_ids.generate_trace_id(),
            span_id=_ids.generate_span_id(),
            is_remote=False,
            trace_flags=_UNSAMPLED,
        )
    )
