"""Trace context passed through an unsampled pipeline hop as it came.

A hop under an unsampled parent starts no span (nobody would record it): the context current
while it runs is the message's own, so the ``traceparent`` it passes on (in the headers of the
messages it publishes, in the ``trace_context`` of its invocations) is exactly the one it
received. :func:`parent_of` keeps that header with the parent's span (a :class:`CarriedSpan`),
so passing it on is a dict update (:func:`carried_headers`) instead of OpenTelemetry's inject
(~5 µs, three times per webhook), and the parent parsed for a message's first hop (source) is
reused for its next one (destination), which carries the same header.
"""

from __future__ import annotations

from collections.abc import Mapping

from fnbox.telemetry.propagation import TRACEPARENT, TRACESTATE, common_span_context, context_of
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext
from opentelemetry.trace.propagation import _SPAN_KEY

__all__ = ["CarriedSpan", "carried_headers", "is_carried", "parent_of"]

_EMPTY_CONTEXT = Context()
_KEEP = 1024  # parsed parents kept (a message's hops are a few milliseconds apart)
_parsed: dict[str, Context] = {}


class CarriedSpan(NonRecordingSpan):
    """The unsampled remote parent of a hop, with the trace headers it came in."""

    def __init__(self, context: SpanContext, headers: dict[str, str]) -> None:
        super().__init__(context)
        self.headers = headers


def parent_of(headers: Mapping[str, str]) -> Context | None:
    """:func:`fnbox.telemetry.propagation.context_of` ``(headers)``, whose span is a
    :class:`CarriedSpan` when the traceparent is in the common form (version 00, lowercase
    hex: what inject writes, so passing it on unchanged is what inject would do), unsampled
    (OpenTelemetry's samplers may set other flag bits, e.g. random 0x02), without a
    tracestate."""
    header = headers.get(TRACEPARENT)
    if header is None:
        return None
    if TRACESTATE in headers:
        return context_of(headers)
    context = _parsed.get(header)
    if context is not None:
        return context
    remote = common_span_context(header)
    if remote is None or remote.trace_flags.sampled:
        return context_of(headers)
    context = trace.set_span_in_context(CarriedSpan(remote, {TRACEPARENT: header}), _EMPTY_CONTEXT)
    if len(_parsed) >= _KEEP:
        _parsed.clear()
    _parsed[header] = context
    return context


def is_carried(context: Context) -> bool:
    """Whether ``context``'s span is a :class:`CarriedSpan` (an unsampled parent)."""
    return type(context.get(_SPAN_KEY)) is CarriedSpan


def carried_headers() -> dict[str, str] | None:
    """The trace headers to pass on when the current span is a :class:`CarriedSpan` (no span
    was started under it): what inject would write. None otherwise."""
    span = otel_context.get_current().get(_SPAN_KEY)
    return span.headers if type(span) is CarriedSpan else None
