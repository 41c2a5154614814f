"""Spans and counters of the bus hops: a PRODUCER span per publish whose context rides in the
message headers, a CONSUMER span per processing attempt parented on it.

A round that handles several messages at once (onBatch) is parented on the first message and
linked to every message, so each webhook's trace still reaches its delivery.

A trace that is not sampled (its root was not recorded) gets no spans from these hops: its
context is passed on unchanged, so its trace id still reaches logs and outbound requests at
a fraction of the cost of spans nobody records.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import (
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from typing import Any, TypeVar

from fnbox.bus import Bus, Delivery, Message
from fnbox.delivery.busio import Outgoing
from fnbox.delivery.busio import publish_all as _publish_all
from fnbox.telemetry.carried import carried_headers, is_carried, parent_of
from fnbox.telemetry.propagation import inject, link_of, unsampled_parent, within
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind

__all__ = ["DeliveryRound", "consumed", "delivery_round", "publish", "publish_all"]

tracer = trace.get_tracer("fnbox.pipeline")
meter = metrics.get_meter("fnbox.pipeline")

_redeliveries = meter.create_counter(
    "fnbox.pipeline.retries",
    unit="1",
    description="Messages taken again after a failed or unfinished attempt (retries and "
    "expired leases), by stage.",
)
# Counted here and read when a reader collects (an observable counter): a dict increment per
# attempt instead of a synchronous Counter.add (~6 µs each).
_attempt_counts: dict[str, int] = {}


def _observe_attempts(_options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
    for verdict, count in list(_attempt_counts.items()):
        yield metrics.Observation(count, {"verdict": verdict})


_attempts = meter.create_observable_counter(
    "fnbox.delivery.attempts",
    callbacks=[_observe_attempts],
    unit="1",
    description="Destination delivery attempts by verdict (OK, RETRY, FAIL).",
)

S = TypeVar("S")


def _kind(topic: str) -> str:
    return topic.split(".", 1)[0]


def _producer_span(topic: str, count: int) -> contextlib.AbstractContextManager[Span]:
    return tracer.start_as_current_span(
        f"publish {_kind(topic)}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "fnbox",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.batch.message_count": count,
        },
        record_exception=True,
        set_status_on_exception=True,  # the bus failing is a platform fault
    )


async def publish(
    bus: Bus,
    topic: str,
    data: bytes,
    headers: MutableMapping[str, str],
    *,
    dedup_id: str | None = None,
) -> str:
    """``bus.publish`` inside a PRODUCER span whose context is added to ``headers``."""
    if unsampled_parent():
        inject(headers)
        return await bus.publish(topic, data, headers, dedup_id=dedup_id)
    with _producer_span(topic, 1):
        inject(headers)
        return await bus.publish(topic, data, headers, dedup_id=dedup_id)


async def publish_all(
    bus: Bus, topic: str, messages: Sequence[Outgoing], acked: Sequence[Delivery] = ()
) -> None:
    """:func:`fnbox.delivery.busio.publish_all` inside one PRODUCER span, its context added
    to every message's headers (``acked``: acked once they are durable)."""
    if not messages:
        await _publish_all(bus, topic, messages, acked)
        return
    carried = carried_headers()
    if carried is not None:  # the context this hop received, passed on as it came
        for message in messages:
            message.headers.update(carried)
        await _publish_all(bus, topic, messages, acked)
        return
    if unsampled_parent():
        carrier: dict[str, str] = {}
        inject(carrier)
        for message in messages:
            message.headers.update(carrier)
        await _publish_all(bus, topic, messages, acked)
        return
    with _producer_span(topic, len(messages)):
        for message in messages:
            inject(message.headers)
        await _publish_all(bus, topic, messages, acked)


def _consumer_attributes(message: Message, stage: str) -> dict[str, Any]:
    return {
        "messaging.system": "fnbox",
        "messaging.operation.type": "process",
        "messaging.destination.name": message.topic,
        "messaging.message.id": message.id,
        "fnbox.stage": stage,
        "fnbox.attempt": message.attempt,
    }


Process = Callable[[S, Delivery], Coroutine[Any, Any, None]]


def consumed(name: str, stage: str) -> Callable[[Process[S]], Process[S]]:
    """Decorate ``process(self, delivery)``: a CONSUMER span parented on the message's
    publisher; a message seen again (attempt > 1) counts as a retry of ``stage``."""

    def wrap(method: Process[S]) -> Process[S]:
        @functools.wraps(method)
        async def process(self: S, delivery: Delivery) -> None:
            message = delivery.message
            if message.attempt > 1:
                _redeliveries.add(1, {"stage": stage})
            parent = parent_of(message.headers)
            if parent is not None and (is_carried(parent) or unsampled_parent(parent)):
                with within(parent):
                    await method(self, delivery)
                return
            with tracer.start_as_current_span(
                name,
                context=parent,
                kind=SpanKind.CONSUMER,
                attributes=_consumer_attributes(message, stage),
            ):
                await method(self, delivery)

        return process

    return wrap


class DeliveryRound:
    """The span of one destination round; :meth:`settled` records what became of it."""

    def __init__(self, span: Span | None, size: int) -> None:
        self.span = span
        self._size = size

    def settled(self, verdicts: Sequence[object]) -> None:
        """One verdict (an enum with a ``name``, or a string) per message, in order."""
        labels = [str(getattr(v, "name", v)) for v in verdicts]
        for label in labels:
            _attempt_counts[label] = _attempt_counts.get(label, 0) + 1
        if self.span is None:
            return
        if self._size == 1 and labels:
            self.span.set_attribute("fnbox.verdict", labels[0])
        else:
            self.span.set_attribute("fnbox.verdicts", labels)


class _Unsampled:
    """A round under an unsampled parent: no span, the parent's context current."""

    __slots__ = ("_parent", "_round", "_token")

    def __init__(self, parent: Context, size: int) -> None:
        self._parent = parent
        self._round = DeliveryRound(None, size)

    def __enter__(self) -> DeliveryRound:
        self._token = otel_context.attach(self._parent)
        return self._round

    def __exit__(self, *exc_info: object) -> None:
        otel_context.detach(self._token)


def delivery_round(
    topic: str, deliveries: Sequence[Delivery]
) -> contextlib.AbstractContextManager[DeliveryRound]:
    """A CONSUMER span around delivering ``deliveries`` of ``topic`` (one attempt each)."""
    messages = [d.message for d in deliveries]
    retried = sum(1 for m in messages if m.attempt > 1)
    if retried:
        _redeliveries.add(retried, {"stage": "destination"})
    first: Mapping[str, str] = messages[0].headers if messages else {}
    parent = parent_of(first)
    if parent is not None and (is_carried(parent) or unsampled_parent(parent)):
        return _Unsampled(parent, len(messages))  # a plain object: no generator per round
    return _recorded_round(topic, messages, parent)


@contextlib.contextmanager
def _recorded_round(
    topic: str, messages: list[Message], parent: Context | None
) -> Iterator[DeliveryRound]:
    attributes = _consumer_attributes(messages[0], "destination") if messages else {}
    attributes["messaging.destination.name"] = topic
    if len(messages) > 1:
        attributes.pop("messaging.message.id", None)
        attributes["messaging.batch.message_count"] = len(messages)
        attributes["fnbox.attempt"] = max(m.attempt for m in messages)
    links: list[Link] = [link for m in messages[1:] if (link := link_of(m.headers)) is not None]
    with tracer.start_as_current_span(
        f"deliver {_kind(topic)}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=links,
        record_exception=True,
        set_status_on_exception=True,
    ) as span:
        yield DeliveryRound(span, len(messages))
