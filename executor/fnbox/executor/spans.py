"""The executor's spans: whether any are worth making, and those of a function's outbound
requests, made after the fact from its result.

The Node runtime records each ``fetch`` (method, url, status, start offset, duration); these
become CLIENT spans under the ``executor.invoke`` span with their real start and end times.
The worker's clock is not ours: the invocation's start is placed at "result received minus its
duration" (never before the executor span began), and offsets are counted from there.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import MutableMapping
from urllib.parse import urlsplit, urlunsplit

from fnbox.executor.types import InvocationResult, OutboundRequest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, Span, SpanKind

__all__ = ["inject_or_start", "provider_records", "record_requests", "recording"]

tracer = trace.get_tracer("fnbox.executor")
_random_bits = random.getrandbits
_last: tuple[trace.TracerProvider, bool] | None = None


def provider_records(provider: trace.TracerProvider) -> bool:
    """Whether ``provider`` may record spans: not a no-op one, and not an SDK provider whose
    sampler is ALWAYS_OFF (what ``fnbox.telemetry.install`` picks when nothing exports)."""
    if isinstance(provider, NoOpTracerProvider | ProxyTracerProvider):
        return False
    return getattr(provider, "sampler", None) is not ALWAYS_OFF


def recording() -> bool:
    """Whether the global tracer provider may record spans (so spans are worth making: even
    a non-recording SDK span costs tens of µs per call)."""
    global _last
    provider = trace.get_tracer_provider()
    last = _last
    if last is None or last[0] is not provider:
        last = _last = (provider, provider_records(provider))
    return last[1]


def inject_or_start(carrier: MutableMapping[str, str]) -> None:
    """Write the current trace context into ``carrier``; when there is none (and the carrier
    has none), a new unsampled one, as a never-sampling SDK span would have started, so the
    function's ``fetch`` still carries a ``traceparent``.

    What OpenTelemetry's propagator writes, without its second look-up of the current span
    and its f-string (%-formatting is ~0.4 µs faster): 6 µs down to 1.5 µs per invocation.
    """
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        carrier["traceparent"] = "00-%032x-%016x-%02x" % (  # noqa: UP031
            span_context.trace_id,
            span_context.span_id,
            span_context.trace_flags,
        )
        if span_context.trace_state:
            carrier["tracestate"] = span_context.trace_state.to_header()
    elif "traceparent" not in carrier:
        trace_id = _random_bits(128) or 1
        span_id = _random_bits(64) or 1
        carrier["traceparent"] = "00-%032x-%016x-00" % (trace_id, span_id)  # noqa: UP031


def record_requests(span: Span, result: InvocationResult) -> None:
    """One child span of ``span`` per outbound request in ``result``."""
    if not result.requests or not span.is_recording():
        return
    now = time.time_ns()
    began = getattr(span, "start_time", None) or now
    invocation_start = max(began, now - int(result.duration_ms * 1e6))
    parent = trace.set_span_in_context(span)
    for request in result.requests:
        start = min(invocation_start + int(request.start_ms * 1e6), now)
        end = min(start + int(request.duration_ms * 1e6), now)
        child = tracer.start_span(
            f"fetch {request.method.upper()}",
            context=parent,
            kind=SpanKind.CLIENT,
            start_time=start,
            attributes=_attributes(request),
        )
        child.end(end_time=max(end, start))


def _attributes(request: OutboundRequest) -> dict[str, str | int | float]:
    parts = urlsplit(request.url)
    attributes: dict[str, str | int | float] = {
        "http.request.method": request.method.upper(),
        # Without the query and credentials: they often carry API keys.
        "url.full": urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", "")),
        "server.address": parts.hostname or "",
        "fnbox.fetch.duration_ms": request.duration_ms,
    }
    try:
        if parts.port is not None:
            attributes["server.port"] = parts.port
            attributes["url.full"] = urlunsplit(
                (parts.scheme, f"{parts.hostname}:{parts.port}", parts.path, "", "")
            )
    except ValueError:
        pass
    if request.status:
        attributes["http.response.status_code"] = request.status
    if request.error:
        # The function's outcome decides what a failed request means; not a platform fault.
        attributes["error.type"] = _error_type(request.error)
    return attributes


_CODE = re.compile(r"[A-Z][A-Z0-9_]{2,}")


def _error_type(error: str) -> str:
    """The error's code (``EGRESS_DENIED``, ``ECONNREFUSED``) when it names one, else its
    first part (``fetch failed``): low cardinality, and no URL that could hold a key."""
    parts = [part.strip() for part in error.split(":")]
    return next((part for part in parts if _CODE.fullmatch(part)), parts[0])[:100]
