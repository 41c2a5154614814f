"""An unsampled hop passes the traceparent it received on as it came: what OpenTelemetry's
inject would write under that parent, and nothing once a span was started under it."""

from __future__ import annotations

import pytest
from fnbox.telemetry.carried import carried_headers, is_carried, parent_of
from fnbox.telemetry.propagation import context_of, inject, unsampled_parent, within
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

TID = "0af7651916cd43dd8448eb211c80319c"
SID = "b7ad6b7169203331"
UNSAMPLED = f"00-{TID}-{SID}-00"


@pytest.mark.parametrize("flags", ["00", "02", "fe"])  # 02: the random bit samplers set
def test_an_unsampled_parent_is_carried_and_passed_on_as_inject_would(flags: str) -> None:
    traceparent = f"00-{TID}-{SID}-{flags}"
    parent = parent_of({"traceparent": traceparent, "other": "x"})
    assert parent is not None and is_carried(parent) and unsampled_parent(parent)
    assert parent_of({"traceparent": traceparent}) is parent  # the next hop reuses it
    expected = context_of({"traceparent": traceparent})
    assert expected is not None
    assert (
        trace.get_current_span(parent).get_span_context()
        == trace.get_current_span(expected).get_span_context()
    )
    assert carried_headers() is None  # not within it yet
    with within(parent):
        injected: dict[str, str] = {}
        inject(injected)
        assert carried_headers() == injected == {"traceparent": traceparent}


def test_what_an_unsampled_root_injects_is_carried() -> None:
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    with tracer.start_as_current_span("root"):
        injected: dict[str, str] = {}
        inject(injected)
    parent = parent_of(injected)
    assert parent is not None and is_carried(parent)


def test_other_parents_are_parsed_as_context_of_does_and_not_carried() -> None:
    for headers in [
        {"traceparent": f"00-{TID}-{SID}-01"},  # sampled: spans are started under it
        {"traceparent": f"00-{TID}-{SID}-03"},
        {"traceparent": UNSAMPLED, "tracestate": "congo=t61rcWkgMzE"},
        {"traceparent": f"00-{TID.upper()}-{SID}-00"},
        {"traceparent": f"00-{'0' * 32}-{SID}-00"},
        {"traceparent": "garbage"},
        {},
    ]:
        parent = parent_of(headers)
        expected = context_of(headers)
        assert (parent is None) == (expected is None), headers
        if parent is not None and expected is not None:
            assert not is_carried(parent), headers
            assert (
                trace.get_current_span(parent).get_span_context()
                == trace.get_current_span(expected).get_span_context()
            )
            with within(parent):
                assert carried_headers() is None


def test_a_span_started_under_the_parent_is_passed_on_instead() -> None:
    parent = parent_of({"traceparent": UNSAMPLED})
    assert parent is not None
    tracer = TracerProvider(sampler=ALWAYS_ON).get_tracer("test")
    with within(parent), tracer.start_as_current_span("child") as child:
        assert carried_headers() is None
        injected: dict[str, str] = {}
        inject(injected)
        assert f"{child.get_span_context().span_id:016x}" in injected["traceparent"]
