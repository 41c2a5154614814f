"""The exposition texts of the two processes of ``fnbox serve`` as one scrape."""

from __future__ import annotations

from fnbox.telemetry.prometheus import merge

CONTROL = """# HELP fnbox_executor_in_flight Invocations running
# TYPE fnbox_executor_in_flight gauge
fnbox_executor_in_flight 2
# HELP fnbox_logs_dropped_total Log entries dropped
# TYPE fnbox_logs_dropped_total counter
fnbox_logs_dropped_total{reason="overload"} 1
"""

PIPELINE = """# HELP fnbox_gateway_request_duration_seconds Time to answer a webhook
# TYPE fnbox_gateway_request_duration_seconds histogram
fnbox_gateway_request_duration_seconds_bucket{status="202",le="0.005"} 3
fnbox_gateway_request_duration_seconds_bucket{status="202",le="+Inf"} 4
fnbox_gateway_request_duration_seconds_sum{status="202"} 0.02
fnbox_gateway_request_duration_seconds_count{status="202"} 4
# HELP fnbox_logs_dropped_total Log entries dropped
# TYPE fnbox_logs_dropped_total counter
fnbox_logs_dropped_total{reason="slow_tail"} 5
"""


def test_families_of_both_processes_appear_once_with_all_their_samples() -> None:
    merged = merge([CONTROL, PIPELINE])
    lines = merged.splitlines()
    assert merged.endswith("\n")
    kinds = {
        "fnbox_executor_in_flight": "gauge",
        "fnbox_gateway_request_duration_seconds": "histogram",
        "fnbox_logs_dropped_total": "counter",
    }
    for family, kind in kinds.items():
        assert lines.count(f"# TYPE {family} {kind}") == 1
        assert sum(line.startswith(f"# HELP {family} ") for line in lines) == 1
    # A family's samples follow its own header, whichever process they came from.
    start = lines.index("# TYPE fnbox_logs_dropped_total counter")
    assert lines[start + 1 : start + 3] == [
        'fnbox_logs_dropped_total{reason="overload"} 1',
        'fnbox_logs_dropped_total{reason="slow_tail"} 5',
    ]
    start = lines.index("# TYPE fnbox_gateway_request_duration_seconds histogram")
    assert lines[start + 4] == 'fnbox_gateway_request_duration_seconds_count{status="202"} 4'
    assert "fnbox_executor_in_flight 2" in lines


def test_nothing_to_merge_is_empty() -> None:
    assert merge(["", ""]) == ""
    assert merge([CONTROL]).splitlines() == CONTROL.splitlines()
