"""A server span for every RPC (the executor's and the invocation spans nest under it).
Providers and exporters are set up by ``fnbox.telemetry``.

``instrument(server)`` wraps each method handler once, as it is registered, so that a call
pays for no interceptor: grpc.aio runs an interceptor as a chain of coroutines per call and
the interceptor built a new method handler per call (together ~10 µs of a unary call).

A minimal replacement for OpenTelemetry's grpc.aio interceptor, which cost 150-300 µs of CPU
per call even with nothing exporting: a caller's ``traceparent`` always becomes the RPC's
context (so its trace id reaches the executor, the worker and the function's ``fetch``), but a
SERVER span is made only when the tracer provider can record one (not ALWAYS_OFF, the
sampler ``fnbox.telemetry.install`` picks when nothing exports).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import grpc
from fnbox.executor.spans import provider_records
from fnbox.telemetry.propagation import TRACEPARENT, TRACESTATE, context_of
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status
from opentelemetry.trace import StatusCode as SpanStatus

__all__ = ["ServerSpans", "call_metadata", "instrument"]

if TYPE_CHECKING:
    _GenericHandler = grpc.GenericRpcHandler[Any, Any]
else:  # not subscriptable at run time
    _GenericHandler = grpc.GenericRpcHandler

Context_ = grpc.aio.ServicerContext[Any, Any]
Metadata = Iterable[tuple[str, str | bytes]]

# The call's metadata as grpc.aio gave it to the generic handler that found its method.
# grpc.aio converts the metadata to Python once for that look-up, then again on every
# ``context.invocation_metadata()`` (~2.5 µs each for a user agent and a token here): the
# look-up runs in the call's own task, as the method handler does, so this variable holds that
# call's metadata for its handler. It is kept with the task that looked the method up and used
# only by that same task: should a grpc version look methods up in one task and run handlers in
# others (which copy the variable when they are made), a handler converts its own metadata
# again rather than take another call's (its token decides who the caller is).
_call_metadata: ContextVar[tuple[object, Metadata] | None] = ContextVar(
    "fnbox_call_metadata", default=None
)


def call_metadata(context: Context_) -> Metadata:
    """The metadata of the call ``context`` serves (without converting it again when its
    method was found, in this task, by a handler registered through ``instrument``)."""
    kept = _call_metadata.get()
    if kept is None or kept[0] is not asyncio.current_task():
        return context.invocation_metadata() or ()
    return kept[1]


def _keep_metadata(details: grpc.HandlerCallDetails) -> None:
    try:
        task: object = asyncio.current_task()
    except RuntimeError:  # no running loop: a handler looked up outside grpc.aio
        return
    if task is not None:
        _call_metadata.set((task, details.invocation_metadata))


# The codes that are the platform's fault (as OpenTelemetry's interceptor has it); the others
# (NOT_FOUND, INVALID_ARGUMENT, ...) are the caller's and leave the span UNSET.
_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def instrument(server: grpc.aio.Server, provider: trace.TracerProvider | None = None) -> None:
    """Give every RPC of ``server`` a server span: the handlers registered from now on (with
    ``add_generic_rpc_handlers`` / ``add_registered_method_handlers``, as the generated
    ``add_*Servicer_to_server`` functions do) are wrapped once."""
    spans = ServerSpans(provider)
    add_generic = server.add_generic_rpc_handlers

    def add_generic_rpc_handlers(handlers: Sequence[grpc.GenericRpcHandler[Any, Any]]) -> None:
        add_generic([_SpanningHandler(handler, spans) for handler in handlers])

    def add_registered_method_handlers(
        service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        # As a generic handler (a dict look-up per call), not as registered methods: grpc.aio's
        # server loop keeps one pending request-call per registered method and, for every
        # call that arrives, runs asyncio.wait over all of them (36 here: ~150 set iterations
        # and 70 callback adds and removes per call).
        wrapped = {
            f"/{service}/{name}": spans.wrap(h, f"/{service}/{name}")
            for name, h in handlers.items()
        }
        add_generic([_MethodTable(wrapped)])

    setattr(server, "add_generic_rpc_handlers", add_generic_rpc_handlers)  # noqa: B010
    setattr(server, "add_registered_method_handlers", add_registered_method_handlers)  # noqa: B010


class _MethodTable(_GenericHandler):
    """The method handlers of one service by full method name; keeps the metadata of each
    call it finds a method for (see ``call_metadata``)."""

    def __init__(self, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]) -> None:
        self._handlers = handlers

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = self._handlers.get(handler_call_details.method)
        if handler is not None:
            _keep_metadata(handler_call_details)
        return handler


class _SpanningHandler(_GenericHandler):
    """A generic handler whose method handlers are wrapped by ``spans`` (once per method);
    keeps the metadata of each call it finds a method for (see ``call_metadata``)."""

    def __init__(self, inner: grpc.GenericRpcHandler[Any, Any], spans: ServerSpans) -> None:
        self._inner = inner
        self._spans = spans
        self._wrapped: dict[str, tuple[object, grpc.RpcMethodHandler[Any, Any]]] = {}

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = self._wrapped[method] = (handler, self._spans.wrap(handler, method))
        _keep_metadata(handler_call_details)
        return cached[1]


def _remote_context(metadata: Iterable[tuple[str, str | bytes]] | None) -> Context | None:
    """The caller's trace context from the call metadata, when it sent a valid one."""
    carrier: dict[str, str] | None = None
    for key, value in metadata or ():
        if key == TRACEPARENT or key == TRACESTATE:
            if carrier is None:
                carrier = {}
            carrier[key] = value.decode("latin-1") if isinstance(value, bytes) else value
    return None if carrier is None else context_of(carrier)


# (request streaming, response streaming) -> the handler's attribute and grpc's factory prefix.
_KINDS = {
    (False, False): "unary_unary",
    (False, True): "unary_stream",
    (True, False): "stream_unary",
    (True, True): "stream_stream",
}


class ServerSpans:
    """A SERVER span per RPC named after its method (``/package.Service/Method``), with
    ``rpc.*`` attributes and ``rpc.grpc.status_code``; ERROR status for platform faults."""

    def __init__(self, provider: trace.TracerProvider | None) -> None:
        self._provider = provider
        self._tracer_of: tuple[trace.TracerProvider, trace.Tracer, bool] | None = None

    def _tracer(self) -> tuple[trace.Tracer, bool]:
        provider = self._provider or trace.get_tracer_provider()
        cached = self._tracer_of
        if cached is None or cached[0] is not provider:
            cached = (
                provider,
                provider.get_tracer("fnbox.server.grpc"),
                provider_records(provider),
            )
            self._tracer_of = cached
        return cached[1], cached[2]

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """``handler`` with a server span around each call of ``method``."""
        kind = _KINDS[handler.request_streaming, handler.response_streaming]
        behavior = getattr(handler, kind)
        wrapped = (self._streaming if handler.response_streaming else self._unary)(behavior, method)
        make: Callable[..., grpc.RpcMethodHandler[Any, Any]] = getattr(
            grpc, f"{kind}_rpc_method_handler"
        )
        return make(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _start(self, method: str, context: Context_) -> tuple[trace.Span | None, object]:
        """Attach the caller's context and, if anything records, a new SERVER span on it;
        returns the span and the token to detach."""
        parent = _remote_context(call_metadata(context))
        tracer, records = self._tracer()
        if not records:
            return None, None if parent is None else otel_context.attach(parent)
        service, _, name = method.lstrip("/").partition("/")
        span = tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": service,
                "rpc.method": name,
                "rpc.grpc.status_code": grpc.StatusCode.OK.value[0],
            },
        )
        return span, otel_context.attach(trace.set_span_in_context(span, parent))

    @staticmethod
    def _finish(span: trace.Span | None, token: object, context: Context_, error: bool) -> None:
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
        if span is None:
            return
        code = context.code()
        if isinstance(code, grpc.StatusCode):
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            if code in _FAULTS:
                details = context.details() or code.value[1]
                span.set_status(Status(SpanStatus.ERROR, f"{code}:{details!s}"))
        elif error:
            code = grpc.StatusCode.UNKNOWN
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            span.set_status(Status(SpanStatus.ERROR, f"{code}:{code.value[1]}"))
        span.end()

    def _unary(self, behavior: Any, method: str) -> Callable[[Any, Context_], Awaitable[Any]]:
        async def unary(request: Any, context: Context_) -> Any:
            span, token = self._start(method, context)
            error = True
            try:
                response = await behavior(request, context)
                error = False
                return response
            except Exception as exc:
                if span is not None and not isinstance(exc, grpc.aio.AbortError):
                    span.record_exception(exc)
                raise
            finally:
                self._finish(span, token, context, error)

        return unary

    def _streaming(
        self, behavior: Any, method: str
    ) -> Callable[[Any, Context_], AsyncIterator[Any]]:
        async def streaming(request: Any, context: Context_) -> AsyncIterator[Any]:
            span, token = self._start(method, context)
            error = True
            try:
                async for response in behavior(request, context):
                    yield response
                error = False
            except Exception as exc:
                if span is not None and not isinstance(exc, grpc.aio.AbortError):
                    span.record_exception(exc)
                raise
            finally:
                self._finish(span, token, context, error)

        return streaming
