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
