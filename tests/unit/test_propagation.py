"""context_of parses the common traceparent itself: it must agree with OpenTelemetry's
extract on every input (the common form, other versions, bad ones, with a tracestate)."""

from __future__ import annotations

import pytest
from fnbox.telemetry.propagation import context_of
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TID = "0af7651916cd43dd8448eb211c80319c"
SID = "b7ad6b7169203331"
CARRIERS = [
    {},
    {"other": "x"},
    {"traceparent": f"00-{TID}-{SID}-01"},
    {"traceparent": f"00-{TID}-{SID}-00"},
    {"traceparent": f"00-{TID}-{SID}-03"},
    {"traceparent": f"00-{TID}-{SID}-01", "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa"},
    {"traceparent": f"00-{'0' * 32}-{SID}-01"},
    {"traceparent": f"00-{TID}-{'0' * 16}-01"},
    {"traceparent": f"00-{TID.upper()}-{SID}-01"},
    {"traceparent": f"00-{TID}-{SID}-01-extra"},
    {"traceparent": f"01-{TID}-{SID}-01-extra"},
    {"traceparent": f"ff-{TID}-{SID}-01"},
    {"traceparent": f" 00-{TID}-{SID}-01 "},
    {"traceparent": f"00-{TID[:-1]}-{SID}-01"},
    {"traceparent": f"00-{TID}-{SID}-1"},
    {"traceparent": f"00-{TID}-{SID}-0x"},
    {"traceparent": f"00_{TID}_{SID}_01"},
    {"traceparent": ""},
]


def _expected(carrier: dict[str, str]) -> trace.SpanContext | None:
    if "traceparent" not in carrier:
        return None
    context = TraceContextTextMapPropagator().extract(carrier)
    span_context = trace.get_current_span(context).get_span_context()
    return span_context if span_context.is_valid else None


@pytest.mark.parametrize("carrier", CARRIERS)
def test_context_of_agrees_with_opentelemetry(carrier: dict[str, str]) -> None:
    context = context_of(carrier)
    got = None if context is None else trace.get_current_span(context).get_span_context()
    expected = _expected(carrier)
    assert got == expected
    if got is not None and expected is not None:
        assert got.is_remote and got.trace_flags == expected.trace_flags
        assert got.trace_state == expected.trace_state


def test_the_common_form_is_parsed() -> None:
    context = context_of({"traceparent": f"00-{TID}-{SID}-01"})
    assert context is not None
    span_context = trace.get_current_span(context).get_span_context()
    assert (span_context.trace_id, span_context.span_id) == (int(TID, 16), int(SID, 16))
    assert span_context.trace_flags.sampled
