"""Runs source functions on stored webhooks and publishes the events they emit.

With delivery in the same process (``fnbox serve``: :class:`Routes` given), the events are
routed here and published straight to ``deliveries.<destination>``, the fan-out the router
would make (integrations object applied); a source with no connected destination publishes
nothing. Otherwise (a gateway alone, scale-out) they go to ``events.<source>`` for the router.

A webhook is acknowledged on the bus only after its events are durable on the next topic (or
it was dead-lettered); a routing lookup that fails retries the webhook like a failed publish.
So a crash at any point redelivers it, and messageIds derived from the webhook id (the dedup
ids of both topics) make the republished events duplicates the bus drops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from fnbox.bus import Bus, Delivery
from fnbox.client.errors import NotFound, RPCError
from fnbox.delivery import headers as h
from fnbox.delivery.busio import Outgoing, publish_topics
from fnbox.delivery.control import ControlPlane
from fnbox.delivery.dead_letters import (
    FINAL_OUTCOME,
    INSERT_FAILED,
    RETRIES_EXHAUSTED,
    Stage,
    dead_letter,
)
from fnbox.delivery.outcomes import Verdict, for_error, for_outcome
from fnbox.delivery.routing import FanOut, Routes
from fnbox.delivery.tasks import Slots
from fnbox.functions.v1 import invocation_pb2
from fnbox.gateway.enrich import enrich
from fnbox.gateway.envelope import webhook_request
from fnbox.gateway.http import GROUP
from fnbox.gateway.instances import InstanceCache
from fnbox.gateway.settings import GatewaySettings
from fnbox.telemetry import messaging

__all__ = ["SourceProcessor"]

log = logging.getLogger(__name__)


class _Retry(Exception):
    """The webhook must be tried again later (a retryable outcome or platform fault)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay


class SourceProcessor:
    """Consumes ``webhooks.<id>`` topics; :meth:`run_topic` is one topic's loop."""

    def __init__(
        self,
        *,
        settings: GatewaySettings,
        bus: Bus,
        control: ControlPlane,
        instances: InstanceCache,
        routes: Routes | None = None,
        on_topic: Callable[[str], None] = lambda topic: None,
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._control = control
        self._instances = instances
        self._routes = routes
        self._backoff = settings.backoff()
        self._on_topic = on_topic
        self.processed = 0
        self.filtered = 0

    async def run_topic(self, topic: str) -> None:
        slots = Slots(self._settings.concurrency)
        running: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            slots.release()

        try:
            while True:
                await slots.any_free()
                if running:  # one lease for several webhooks while the topic is busy
                    await slots.refilled()
                try:
                    deliveries = await self._bus.consume(
                        topic,
                        GROUP,
                        batch=min(self._settings.consume_batch, slots.free),
                        wait=1.0,
                        lease=self._settings.lease_seconds,
                    )
                except Exception:
                    log.warning("consuming %s failed", topic, exc_info=True)
                    await asyncio.sleep(self._settings.platform_retry_seconds)
                    continue
                for delivery in deliveries:
                    task = asyncio.create_task(self._process(delivery))
                    running.add(task)
                    slots.take()
                    task.add_done_callback(finished)
        finally:
            for task in running:
                task.cancel()

    @messaging.consumed("process webhooks", "source")
    async def _process(self, delivery: Delivery) -> None:
        message = delivery.message
        try:
            await self._handle(delivery)
        except _Retry as retry:
            await _settle(delivery.nak(retry.delay))
        except Exception:
            log.exception("processing webhook %s failed", message.id)
            await _settle(delivery.nak(self._settings.platform_retry_seconds))

    async def _handle(self, delivery: Delivery) -> None:
        message = delivery.message
        headers = message.headers
        instance = headers[h.INSTANCE]
        webhook_id = headers.get(h.WEBHOOK_ID, message.id)
        request = webhook_request(headers, message.data)
        invoke = invocation_pb2.InvokeFunctionRequest(
            target=instance,
            request=request,
            request_id=webhook_id,
            version=int(headers.get(h.VERSION) or 0),
        )
        try:
            result = await self._control.lane(delivery.message.topic).invoke(invoke)
        except NotFound:
            log.warning("source instance %s is gone: dropping webhook %s", instance, webhook_id)
            await delivery.term()
            return
        except RPCError as error:
            if for_error(error) is Verdict.RETRY:
                raise _Retry(self._platform_delay(message.attempt)) from error
            await self._dead_letter(delivery, request, FINAL_OUTCOME, error=error)
            return
        verdict = for_outcome(result.outcome)
        if verdict is Verdict.RETRY:
            if not self._backoff.exhausted(message.attempt, 0.0):
                raise _Retry(self._backoff.delay(message.attempt))
            await self._dead_letter(delivery, request, RETRIES_EXHAUSTED, result=result)
            return
        if verdict is Verdict.FAIL:
            await self._dead_letter(delivery, request, FINAL_OUTCOME, result=result)
            return
        received_at = headers.get(h.RECEIVED_AT) or h.rfc3339()
        events: list[Outgoing] = []
        for index, raw in enumerate(result.events):
            try:
                data, message_id = enrich(
                    raw, webhook_id=webhook_id, index=index, received_at=received_at
                )
            except ValueError:
                log.warning("webhook %s: event %d is not a JSON object", webhook_id, index)
                continue
            events.append(
                Outgoing(
                    data,
                    {h.SOURCE: instance, h.MESSAGE_ID: message_id, h.RECEIVED_AT: received_at},
                    message_id,
                )
            )
        events = await self._source_insert(delivery, instance, request, events)
        try:
            fan_out = await self._fan_out(instance, events)
            # The webhook is acked with its events (one SQLite transaction).
            await publish_topics(
                self._bus, fan_out.by_topic, messaging.publish_all, acked=(delivery,)
            )
        except Exception as error:
            log.warning("routing or publishing events of webhook %s failed: %s", webhook_id, error)
            raise _Retry(self._platform_delay(message.attempt)) from error
        for topic in fan_out.by_topic:
            self._on_topic(topic)
        self.filtered += fan_out.filtered
        fan_out.count_filtered()
        self.processed += 1

    async def _fan_out(self, instance: str, events: list[Outgoing]) -> FanOut:
        """Straight to ``deliveries.*`` when delivery runs here, else to ``events.<source>``."""
        if self._routes is not None:
            return await self._routes.fan_out(events)
        return FanOut({h.topic(h.EVENTS, instance): events} if events else {}, 0)

    async def _source_insert(
        self,
        delivery: Delivery,
        instance: str,
        request: invocation_pb2.WebhookRequest,
        events: list[Outgoing],
    ) -> list[Outgoing]:
        """Run the source's insert instance on each event (when one is configured)."""
        source = await self._instances.lookup(instance)
        if source is None or not source.insert_instance or not events:
            return events
        results = await asyncio.gather(
            *(
                self._control.lane(delivery.message.topic).invoke(
                    invocation_pb2.InvokeFunctionRequest(
                        target=source.insert_instance,
                        event=event.data,
                        request_id=event.dedup_id,
                    )
                )
                for event in events
            ),
            return_exceptions=True,
        )
        kept: list[Outgoing] = []
        for event, result in zip(events, results, strict=True):
            if isinstance(result, RPCError):
                if for_error(result) is Verdict.RETRY:
                    raise _Retry(self._platform_delay(delivery.message.attempt)) from result
                await self._record(delivery, request, INSERT_FAILED, error=result)
                continue
            if isinstance(result, BaseException):
                raise result
            verdict = for_outcome(result.outcome)
            if verdict is Verdict.RETRY:
                if not self._backoff.exhausted(delivery.message.attempt, 0.0):
                    raise _Retry(self._backoff.delay(delivery.message.attempt))
                await self._record(delivery, request, INSERT_FAILED, result=result)
            elif verdict is Verdict.FAIL:
                await self._record(delivery, request, INSERT_FAILED, result=result)
            elif result.outcome == invocation_pb2.OUTCOME_OK and result.HasField("returned"):
                kept.append(Outgoing(result.returned, event.headers, event.dedup_id))
        return kept

    async def _dead_letter(
        self,
        delivery: Delivery,
        request: invocation_pb2.WebhookRequest,
        reason: str,
        *,
        result: invocation_pb2.InvocationResult | None = None,
        error: RPCError | None = None,
    ) -> None:
        await self._record(delivery, request, reason, result=result, error=error)
        await delivery.ack()
        self.processed += 1

    async def _record(
        self,
        delivery: Delivery,
        request: invocation_pb2.WebhookRequest,
        reason: str,
        *,
        result: invocation_pb2.InvocationResult | None = None,
        error: RPCError | None = None,
    ) -> None:
        message = delivery.message
        headers = message.headers
        record = dead_letter(
            instance=headers[h.INSTANCE],
            stage=Stage.DEAD_LETTER_STAGE_SOURCE,
            message_id=headers.get(h.WEBHOOK_ID, message.id),
            reason=reason,
            attempts=message.attempt,
            first_attempt=_published_at(message.published_at),
            request=request,
            result=result,
            error=error,
            replay_count=int(headers.get(h.REPLAY) or 0),
        )
        try:
            await self._control.record_dead_letters([record])
        except RPCError as exc:
            raise _Retry(self._settings.platform_retry_seconds) from exc

    def _platform_delay(self, attempt: int) -> float:
        base = self._settings.platform_retry_seconds
        return float(min(base * 2 ** max(attempt - 1, 0), self._settings.retry_max_seconds))


async def _settle(action: object) -> None:
    try:
        if asyncio.iscoroutine(action):
            await action
    except Exception:
        log.warning("could not settle a bus message", exc_info=True)


def _published_at(value: object) -> float:
    if isinstance(value, int | float):
        return float(value)
    timestamp = getattr(value, "timestamp", None)
    return float(timestamp()) if callable(timestamp) else time.time()
