"""Plain data passed between the executor and its callers (no I/O, no grpc)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class FunctionType(StrEnum):
    SOURCE = "SOURCE"
    DESTINATION = "DESTINATION"
    INSERT_DESTINATION = "INSERT_DESTINATION"
    INSERT_SOURCE = "INSERT_SOURCE"


class Outcome(StrEnum):
    OK = "OK"
    EVENT_NOT_SUPPORTED = "EVENT_NOT_SUPPORTED"
    INVALID_EVENT_PAYLOAD = "INVALID_EVENT_PAYLOAD"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    RETRY = "RETRY"
    DROP = "DROP"
    TIMEOUT = "TIMEOUT"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One function version as the executor runs it.

    ``key`` identifies the code version (e.g. ``workspaces/w/functions/f/versions/3`` or
    ``run:<sha256 of code>``): workers are specialised per key and never serve another key.
    """

    key: str
    type: FunctionType
    code: str
    # 0 means the executor's default (ExecutorSettings.default_timeout_ms / memory_mib).
    timeout_s: float = 0.0
    memory_mib: int = 0
    network: bool = True


@dataclass(frozen=True, slots=True)
class WebhookInput:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Invocation:
    """One call. ``payload`` is the event JSON (kind ``event``), a JSON array (``batch``), or
    unused for ``request`` (see ``request``). ``settings`` is a JSON object.

    ``hold``: whether the call may wait up to ``batch_window_ms`` when its worker is busy, to
    reach it in one write with the calls that follow (calls that come one at a time, as unary
    RPCs do). False for calls whose caller already sends them together and is bound by its own
    number in flight (streams): a wait would only slow it down."""

    kind: Literal["event", "batch", "request"]
    payload: bytes = b""
    request: WebhookInput | None = None
    settings: bytes = b"{}"
    trace: dict[str, str] = field(default_factory=dict)
    hold: bool = True


@dataclass(frozen=True, slots=True)
class UserError:
    name: str
    message: str
    stack: str = ""


@dataclass(frozen=True, slots=True)
class SyntaxProblem:
    message: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    method: str
    url: str
    status: int
    duration_ms: float
    error: str = ""
    # When the request started, in ms after the invocation started (for its trace span).
    start_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class EventResult:
    outcome: Outcome
    status: int
    error_message: str = ""
    returned: bytes | None = None
    error_name: str = ""  # the class of the error the event's handler threw, if any


@dataclass(slots=True)
class InvocationResult:
    outcome: Outcome
    events: list[bytes] = field(default_factory=list)
    objects: list[bytes] = field(default_factory=list)
    returned: bytes | None = None
    batch: list[EventResult] = field(default_factory=list)
    error: UserError | None = None
    logs: list[str] = field(default_factory=list)
    logs_truncated: bool = False
    requests: list[OutboundRequest] = field(default_factory=list)
    duration_ms: float = 0.0
    worker_pid: int = 0
    # The handlers the loaded code defines (onTrack, onBatch, ...), as its worker found them
    # after running the top level; empty when no worker answered (timeout, crash).
    handlers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of the worker pool, for logs, metrics and health."""

    workers_total: int
    workers_busy: int
    workers_warm: int
    in_flight: int
    by_key: dict[str, int]
    kills: dict[str, int]
    crash_looping: list[str]
    spawned: int
    host_limits: dict[str, str]
