"""How long and how often each scenario measures (full run vs ``BENCH_QUICK=1``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """Durations in seconds; every figure is the median over ``repeats`` runs."""

    quick: bool
    duration_s: float
    warmup_s: float
    repeats: int
    loadgen_processes: int
    batch_concurrency: int
    cold_starts: int
    memory_functions: int
    e2e_duration_s: float
    e2e_concurrency: int
    e2e_repeats: int

    @classmethod
    def full(cls) -> BenchConfig:
        return cls(
            quick=False,
            duration_s=3.0,
            warmup_s=0.5,
            repeats=5,
            loadgen_processes=2,
            batch_concurrency=8,
            cold_starts=40,
            memory_functions=100,
            e2e_duration_s=4.0,
            e2e_concurrency=16,
            e2e_repeats=5,
        )

    @classmethod
    def quick_run(cls) -> BenchConfig:
        return cls(
            quick=True,
            duration_s=0.5,
            warmup_s=0.15,
            repeats=3,
            loadgen_processes=2,
            batch_concurrency=8,
            cold_starts=12,
            memory_functions=100,
            e2e_duration_s=1.0,
            e2e_concurrency=16,
            e2e_repeats=2,
        )
