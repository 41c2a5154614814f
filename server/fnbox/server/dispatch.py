"""From an invoke request to an executor call: resolve the target, build the invocation, run it.

Targets: an instance (its deployed version, or ``version`` for a replay, with its own
decrypted settings), a function (its deployed version, else its latest) or a version.
Payload bytes are passed through undecoded: only their first character is looked at.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import time
from dataclasses import dataclass
from typing import Protocol

from fnbox.executor import types as ex
from fnbox.executor.errors import WorkerCrashed
from fnbox.functions.v1 import invocation_pb2 as ipb
from fnbox.server import convert, names, validation
from fnbox.server.auth import Principal
from fnbox.server.cache import MISSING, ReadCache
from fnbox.server.errors import FailedPrecondition, InvalidArgument, NotFound, SyntaxErrorInCode
from fnbox.server.secrets import SecretBox
from fnbox.server.settings import Settings
from fnbox.server.store.base import FunctionRecord, InstanceRecord, Store
from opentelemetry import trace

_OBJECT_START = re.compile(rb"\s*\{")
_ARRAY_START = re.compile(rb"\s*\[")


class Executor(Protocol):
    """What the control service needs of the worker pool."""

    async def invoke(
        self, spec: ex.FunctionSpec, invocation: ex.Invocation
    ) -> ex.InvocationResult: ...

    async def check_syntax(self, code: str) -> ex.SyntaxProblem | None: ...


# Not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__ (2.1
# against 0.6 µs here), and one is made per call. Nothing changes a Target once made.
@dataclass(slots=True)
class Target:
    spec: ex.FunctionSpec
    settings: bytes
    version_name: str
    # For observability: whose invocation it is (usage, logs, redaction).
    function: FunctionRecord | None = None
    instance_id: str = ""
    request_id: str = ""


@dataclass(slots=True)
class _Resolved:
    """What a target name resolved to for a caller (see Dispatcher._recent)."""

    principal: Principal
    function: FunctionRecord
    instance: InstanceRecord | None
    spec: ex.FunctionSpec
    version_name: str
    settings: bytes


class Observer(Protocol):
    """Told of every finished invocation (target None: unsaved code); never raises."""

    def __call__(
        self,
        spec: ex.FunctionSpec,
        invocation: ex.Invocation,
        result: ex.InvocationResult,
        target: Target | None,
    ) -> None: ...

    def fault(
        self,
        spec: ex.FunctionSpec,
        invocation: ex.Invocation,
        error: WorkerCrashed,
        target: Target | None,
        duration_ms: float,
    ) -> None:
        """An invocation whose worker died under it (it has no result)."""


class Dispatcher:
    """Runs invocations for the servicers."""

    def __init__(
        self,
        *,
        store: Store,
        executor: Executor,
        box: SecretBox,
        settings: Settings,
        cache: ReadCache | None = None,
        observer: Observer | None = None,
    ) -> None:
        self._store = store
        self._cache = cache or ReadCache(store, ttl_s=0)
        self._executor = executor
        self._box = box
        self._settings = settings
        self._observer = observer
        # (function id, version) → (the function record it was built from, its spec, version
        # name): what is per version, not per call. Reused while the read cache hands out the
        # same record (a new record, e.g. after a write, rebuilds it).
        self._specs: dict[tuple[str, int], tuple[FunctionRecord, ex.FunctionSpec, str]] = {}
        # Instance id → (the record its settings were revealed from, the settings): decrypting
        # costs ~60 µs per sensitive value here, on every call. Reused while the read cache
        # hands out the same record (an update makes a new one).
        self._revealed: dict[str, tuple[InstanceRecord, bytes]] = {}
        # Target name → what the last call naming it (without settings or version) resolved
        # to: its caller, the records it came from, spec, version name and settings. The next
        # such call of the same caller reuses it while the read cache still hands out those
        # same records (no name parsing, visibility checks or look-ups per call).
        self._recent: dict[str, _Resolved] = {}

    async def invoke(
        self,
        principal: Principal,
        request: ipb.InvokeFunctionRequest,
        trace_headers: dict[str, str] | None = None,
        *,
        streamed: bool = False,
    ) -> ipb.InvocationResult:
        """``trace_headers``: the trace context for the worker, when it is not the current
        one's (see InvokeMixin). ``streamed``: the request came on a stream, so it is not held
        for the batch window (see ``Invocation.hold``)."""
        current = trace.get_current_span()
        span = current if current.is_recording() else None
        if span is not None and request.request_id:
            span.set_attribute("fnbox.request_id", request.request_id)
        target = None if span is not None else self._recent_target(principal, request)
        if target is None:
            target = await self._resolve(principal, request, span)
        invocation = _invocation(
            request, target.spec.type, target.settings, trace_headers, hold=not streamed
        )
        return await self._run(target.spec, invocation, target.version_name, target, span)

    async def run(
        self, principal: Principal, request: ipb.RunFunctionRequest
    ) -> ipb.InvocationResult:
        workspace_id = principal.workspace(request.parent)
        function_type = convert.function_type(request.type)
        code = validation.code(request.code)
        timeout_ms, memory_mib = validation.limits(request.limits, self._settings.executor)
        # Code that does not compile cannot run: the same INVALID_ARGUMENT as saving it.
        await self.compile(code)
        # Same unsaved code of the same workspace reuses a warm worker; anything else never
        # shares one (a worker's module globals must not leak between tenants).
        digest = hashlib.sha256(
            f"{workspace_id}\0{function_type.value}\0{code}".encode()
        ).hexdigest()
        spec = ex.FunctionSpec(
            key=f"run:{digest}",
            type=function_type,
            code=code,
            timeout_s=timeout_ms / 1000,
            memory_mib=memory_mib,
            network=not request.limits.no_network,
        )
        settings = _settings_object(request.settings)
        span = trace.get_current_span()
        span.set_attribute("fnbox.workspace", workspace_id)
        invocation = _invocation(request, function_type, settings)
        return await self._run(spec, invocation, "", None, span if span.is_recording() else None)

    async def compile(self, code: str) -> None:
        """Raises SyntaxErrorInCode (INVALID_ARGUMENT with line and column) for bad code."""
        problem = await self._executor.check_syntax(code)
        if problem is not None:
            raise SyntaxErrorInCode(problem.message, line=problem.line, column=problem.column)

    async def _run(
        self,
        spec: ex.FunctionSpec,
        invocation: ex.Invocation,
        version_name: str,
        target: Target | None,
        span: trace.Span | None,
    ) -> ipb.InvocationResult:
        """``span``: the current span when it records (attributes are set on it), else None."""
        if span is not None:
            span.set_attribute("fnbox.function.type", spec.type.value)
            if version_name:
                span.set_attribute("fnbox.version", version_name)
        started = time.monotonic()
        try:
            result = await self._executor.invoke(spec, invocation)
        except WorkerCrashed as error:
            # No result, but the function's own doing as often as not (out of memory): its
            # logs and usage say so, as they would of an exception.
            if self._observer is not None:
                elapsed_ms = (time.monotonic() - started) * 1000
                asyncio.get_running_loop().call_soon(
                    self._observer.fault, spec, invocation, error, target, elapsed_ms
                )
            raise
        if span is not None:
            span.set_attribute("fnbox.outcome", result.outcome.value)
        if self._observer is not None:
            # Counted and logged right after the answer has left (in this context: its span):
            # a caller does not wait for it (unary p50 at 1 caller: ~10-30 µs less).
            asyncio.get_running_loop().call_soon(self._observer, spec, invocation, result, target)
        return convert.result_pb(result, version=version_name)

    def _recent_target(
        self, principal: Principal, request: ipb.InvokeFunctionRequest
    ) -> Target | None:
        """The target of the last call of ``principal`` with the same name, while its records
        are still the read cache's; else None (then ``_resolve``)."""
        recent = self._recent.get(request.target)
        if (
            recent is None
            or recent.principal is not principal
            or request.settings
            or request.version
        ):
            return None
        function = recent.function
        if self._cache.peek("function", function.id) is not function:
            return None
        instance = recent.instance
        if instance is not None and self._cache.peek("instance", instance.id) is not instance:
            return None
        return Target(
            recent.spec,
            recent.settings,
            recent.version_name,
            function,
            "" if instance is None else instance.id,
            request.request_id,
        )

    async def _resolve(
        self, principal: Principal, request: ipb.InvokeFunctionRequest, span: trace.Span | None
    ) -> Target:
        target = request.target
        kind = _target_kind(target)
        if kind != names.INSTANCE and request.version:
            raise InvalidArgument(
                "version is only for instance targets", reason="VERSION_NOT_ALLOWED"
            )
        ref = _target_ref(kind, target)
        instance_id = ""
        instance: InstanceRecord | None = None
        if kind == names.INSTANCE:
            instance_id = ref.id
            instance, function, version, settings = await self._instance_target(
                principal, ref, request, span
            )
        elif kind == "version":
            function = await self._function(principal, ref, target)
            version = ref.version
            settings = _settings_object(request.settings)
        else:
            found: FunctionRecord | None = self._cache.peek("function", ref.id)
            if found is MISSING:
                found = await self._get_function(ref.id)
            if found is None or not principal.sees(ref, found.workspace_id):
                raise NotFound(target, kind="function")
            function = found
            version = function.deployed_version or function.latest_version
            settings = _settings_object(request.settings)
        if span is not None:
            span.set_attribute("fnbox.function", function.id)
        built = self._specs.get((function.id, version))
        if built is None or built[0] is not function:
            built = await self._build_spec(function, version)
        if kind != "version" and not request.settings and not request.version:
            if len(self._recent) >= _MAX_SPECS:
                self._recent.clear()
            self._recent[target] = _Resolved(
                principal, function, instance, built[1], built[2], settings
            )
        return Target(built[1], settings, built[2], function, instance_id, request.request_id)

    async def _build_spec(
        self, function: FunctionRecord, version: int
    ) -> tuple[FunctionRecord, ex.FunctionSpec, str]:
        code = await self._code(function, version)
        version_name = names.version_name(function.workspace_id, function.id, version)
        spec = ex.FunctionSpec(
            key=version_name,
            type=function.type,
            code=code,
            timeout_s=function.timeout_ms / 1000,
            memory_mib=function.memory_mib,
            network=not function.no_network,
        )
        if len(self._specs) >= _MAX_SPECS:
            self._specs.clear()
        built = self._specs[(function.id, version)] = (function, spec, version_name)
        return built

    async def _instance_target(
        self,
        principal: Principal,
        ref: names.Ref,
        request: ipb.InvokeFunctionRequest,
        span: trace.Span | None,
    ) -> tuple[InstanceRecord, FunctionRecord, int, bytes]:
        """The instance ``ref``, its function, the version it runs and its decrypted
        settings."""
        instance = self._cache.peek("instance", ref.id)
        if instance is MISSING:
            instance = await self._cache.get(
                "instance", ref.id, lambda: self._store.get_instance(ref.id)
            )
        if instance is None or not principal.sees(ref, instance.workspace_id):
            raise NotFound(request.target, kind="instance")
        if span is not None:
            span.set_attribute("fnbox.instance", instance.id)
        if request.settings:
            raise InvalidArgument(
                "an instance runs with its own settings", reason="SETTINGS_NOT_ALLOWED"
            )
        if not instance.enabled:
            raise FailedPrecondition(
                f"instance {instance.id} is disabled",
                reason="INSTANCE_DISABLED",
                metadata={"instance": instance.id},
            )
        function = self._cache.peek("function", instance.function_id)
        if function is MISSING:
            function = await self._get_function(instance.function_id)
        if function is None:  # deleted in between
            raise NotFound(request.target, kind="instance")
        version = request.version or function.deployed_version
        if not version:
            raise FailedPrecondition(
                f"function {function.id} has no deployed version",
                reason="FUNCTION_NOT_DEPLOYED",
                metadata={"function": function.id},
            )
        revealed = self._revealed.get(instance.id)
        if revealed is None or revealed[0] is not instance:
            settings = validation.reveal_settings(
                instance.settings, instance.secret_settings, self._box
            )
            if len(self._revealed) >= _MAX_SPECS:
                self._revealed.clear()
            revealed = self._revealed[instance.id] = (instance, settings)
        return instance, function, version, revealed[1]

    async def _function(self, principal: Principal, ref: names.Ref, target: str) -> FunctionRecord:
        function = await self._get_function(ref.id)
        if function is None or not principal.sees(ref, function.workspace_id):
            raise NotFound(target, kind="function")
        return function

    async def _get_function(self, function_id: str) -> FunctionRecord | None:
        return await self._cache.get(
            "function", function_id, lambda: self._store.get_function(function_id)
        )

    async def _code(self, function: FunctionRecord, version: int) -> str:
        if version == function.latest_version:
            return function.code
        record = await self._cache.get(
            "version",
            (function.id, version),
            lambda: self._store.get_version(function.id, version),
        )
        if record is None:
            raise NotFound(
                names.version_name(function.workspace_id, function.id, version), kind="version"
            )
        return record.code


_MAX_SPECS = 10_000


_target_kind = functools.lru_cache(maxsize=4096)(names.kind_of)


@functools.lru_cache(maxsize=4096)
def _target_ref(kind: str, target: str) -> names.Ref:
    """An invocation target's parsed name (InvalidArgument, never cached, when it is not
    one)."""
    if kind == names.INSTANCE:
        return names.parse_instance(target)
    if kind == "version":
        return names.parse_version(target)
    return names.parse_function(target)


def _settings_object(raw: bytes) -> bytes:
    if not raw:
        return b"{}"
    if not _OBJECT_START.match(raw):
        raise InvalidArgument("settings must be a JSON object", reason="INVALID_SETTINGS")
    return raw


def _invocation(
    request: ipb.InvokeFunctionRequest | ipb.RunFunctionRequest,
    function_type: ex.FunctionType,
    settings: bytes,
    trace_headers: dict[str, str] | None = None,
    *,
    hold: bool = True,
) -> ex.Invocation:
    which = request.WhichOneof("input")
    if which is None:
        raise InvalidArgument("an event, events or a request is required", reason="INPUT_REQUIRED")
    is_source = function_type is ex.FunctionType.SOURCE
    if is_source != (which == "request"):
        expected = "a webhook request" if is_source else "an event or events"
        given = {"event": "an event", "events": "events"}.get(which, "a webhook request")
        raise InvalidArgument(
            f"a {function_type.value.lower()} function takes {expected}, not {given}",
            reason="WRONG_INPUT_KIND",
            metadata={"function_type": function_type.value, "input": which},
        )
    if which == "request":
        webhook = request.request
        return ex.Invocation(
            kind="request",
            request=ex.WebhookInput(
                method=webhook.method or "POST",
                url=webhook.url,
                headers=dict(webhook.headers),
                body=webhook.body,
            ),
            settings=settings,
            trace=trace_headers or {},
            hold=hold,
        )
    if which == "event":
        event = request.event
        if not (event[:1] == b"{" or _OBJECT_START.match(event)):
            raise InvalidArgument("event must be a JSON object", reason="INVALID_EVENT")
        return ex.Invocation(
            kind="event", payload=event, settings=settings, trace=trace_headers or {}, hold=hold
        )
    events = request.events
    if not (events[:1] == b"[" or _ARRAY_START.match(events)):
        raise InvalidArgument("events must be a JSON array", reason="INVALID_EVENT")
    return ex.Invocation(
        kind="batch", payload=events, settings=settings, trace=trace_headers or {}, hold=hold
    )
