"""ScalingPolicy: when a function gets another worker and whether its least busy one takes a
call (pure numbers, asked on every call)."""

from __future__ import annotations

from fnbox.executor.policy import ScalingPolicy

POLICY = ScalingPolicy(max_in_flight=4, scale_up_in_flight=2, max_per_function=3)


def test_first_worker_is_wanted_unless_one_is_starting() -> None:
    assert POLICY.wants_more(0, 0, 0)
    assert not POLICY.wants_more(0, 1, 0)


def test_another_worker_once_the_least_busy_reaches_the_threshold() -> None:
    assert not POLICY.wants_more(1, 0, 1)
    assert POLICY.wants_more(1, 0, 2)
    assert POLICY.wants_more(2, 0, 4)
    # One at a time: none while another is starting.
    assert not POLICY.wants_more(1, 1, 4)


def test_never_beyond_the_per_function_cap() -> None:
    assert not POLICY.wants_more(3, 0, 4)
    assert not POLICY.wants_more(2, 1, 4)


def test_a_worker_takes_calls_up_to_its_in_flight_cap() -> None:
    assert POLICY.has_slot(0)
    assert POLICY.has_slot(3)
    assert not POLICY.has_slot(4)


def test_scale_up_threshold_is_clamped_to_the_in_flight_cap() -> None:
    policy = ScalingPolicy(max_in_flight=2, scale_up_in_flight=16, max_per_function=4)
    assert policy.wants_more(1, 0, 2)


CPU_POLICY = ScalingPolicy(
    max_in_flight=8, scale_up_in_flight=2, max_per_function=3, scale_up_cpu=0.5
)


def test_with_a_cpu_threshold_a_busy_worker_needs_to_be_computing() -> None:
    # Below the in-flight threshold the CPU load is not asked for, nor does it matter.
    assert not CPU_POLICY.asks_cpu(1)
    assert not CPU_POLICY.wants_more(1, 0, 1, 1.0)
    # At the threshold: another worker only for one that computes (unknown load: not yet).
    assert CPU_POLICY.asks_cpu(2)
    assert CPU_POLICY.wants_more(1, 0, 2, 0.8)
    assert not CPU_POLICY.wants_more(1, 0, 5, 0.2)
    assert not CPU_POLICY.wants_more(1, 0, 5, None)


def test_a_full_worker_gets_a_sibling_whatever_its_load() -> None:
    assert not CPU_POLICY.asks_cpu(8)
    assert CPU_POLICY.wants_more(1, 0, 8, None)
    assert CPU_POLICY.wants_more(2, 0, 8, 0.0)
    assert not CPU_POLICY.wants_more(3, 0, 8, 1.0)  # the per-function cap still holds


def test_without_a_cpu_threshold_the_count_alone_decides() -> None:
    assert not POLICY.asks_cpu(2)
    assert POLICY.wants_more(1, 0, 2, None)
