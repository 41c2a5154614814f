"""context_of parses the common traceparent itself: it must agree with OpenTelemetry's
extract on every input (the common form, other versions, bad ones, with a tracestate). inject
and the executor's inject_or_start format it themselves: they must write what OpenTelemetry's
inject writes."""

from __future__ import annotations

import re

import pytest
from fnbox.executor.spans import inject_or_start
from fnbox.telemetry.propagation import context_of, inject, within
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
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


# Contexts to inject: those extracted from the carriers above, and a few made here.
CONTEXTS = (
    [
        TraceContextTextMapPropagator().extract(carrier)
        for carrier in CARRIERS
        if "traceparent" in carrier
    ]
    + [
        trace.set_span_in_context(
            NonRecordingSpan(
                SpanContext(
                    1,
                    2,
                    is_remote=False,
                    trace_flags=TraceFlags(flags),
                    trace_state=TraceState([("k", "v"), ("a", "b")]) if flags else None,
                )
            )
        )
        for flags in (0, 1)
    ]
    + [trace.set_span_in_context(NonRecordingSpan(trace.INVALID_SPAN_CONTEXT))]
)


def _injected_by_opentelemetry(context: Context) -> dict[str, str]:
    carrier: dict[str, str] = {"other": "x"}
    TraceContextTextMapPropagator().inject(carrier, context=context)
    return carrier


@pytest.mark.parametrize("context", CONTEXTS)
def test_inject_agrees_with_opentelemetry(context: Context) -> None:
    expected = _injected_by_opentelemetry(context)
    carrier = {"other": "x"}
    inject(carrier, context)
    assert carrier == expected
    carrier = {"other": "x"}
    with within(context):
        inject(carrier)
    assert carrier == expected


@pytest.mark.parametrize("context", CONTEXTS)
def test_inject_or_start_writes_the_current_context_as_opentelemetry_does(context: Context) -> None:
    expected = _injected_by_opentelemetry(context)
    carrier = {"other": "x"}
    with within(context):
        inject_or_start(carrier)
    if "traceparent" in expected:
        assert carrier == expected
    else:  # no valid current span: a new unsampled context
        assert _new_unsampled(carrier["traceparent"])
        assert carrier.keys() == {"other", "traceparent"}


def test_inject_or_start_keeps_the_carriers_context_when_there_is_no_current_one() -> None:
    carrier = {"traceparent": f"00-{TID}-{SID}-01"}
    inject_or_start(carrier)
    assert carrier == {"traceparent": f"00-{TID}-{SID}-01"}
    made = [{"x": "y"} for _ in range(50)]
    for carrier in made:
        inject_or_start(carrier)
        assert _new_unsampled(carrier["traceparent"])
    assert len({carrier["traceparent"] for carrier in made}) == 50


def _new_unsampled(traceparent: str) -> bool:
    match = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-00", traceparent)
    return match is not None and int(match[1], 16) != 0 and int(match[2], 16) != 0
