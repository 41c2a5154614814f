"""One destination instance's consumer: batching, insert function, retries, dead letters.

Each destination runs in its own task with its own concurrency limit and circuit breaker,
so a slow or failing destination only ever holds back its own messages. Once the instance is
deleted, its worker drops what is left on its topic, retires the topic and ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import grpc
from fnbox.bus import Bus, Delivery
from fnbox.client.errors import NotFound, RPCError
from fnbox.delivery import headers as h
from fnbox.delivery.breaker import CircuitBreaker
from fnbox.delivery.control import ControlPlane
from fnbox.delivery.dead_letters import (
    FINAL_OUTCOME,
    INSERT_FAILED,
    RETRIES_EXHAUSTED,
    Stage,
    dead_letter,
    error_class,
)
from fnbox.delivery.handlers import VersionHandlers
from fnbox.delivery.outcomes import Verdict, for_error, for_event_result, for_outcome
from fnbox.delivery.settings import DeliverySettings
from fnbox.delivery.tasks import Slots
from fnbox.functions.v1 import invocation_pb2
from fnbox.telemetry.messaging import delivery_round

__all__ = ["GROUP", "DestinationWorker"]

log = logging.getLogger(__name__)

GROUP = "delivery"
_NOT_FOUND = grpc.StatusCode.NOT_FOUND


@dataclass(frozen=True, slots=True)
class _Config:
    enabled: bool
    insert_instance: str
    # The function (resource name) and its deployed version (version resource name).
    function: str
    version: str
    max_count: int
    max_wait: float
    exists: bool = True


_DEFAULT = _Config(True, "", "", "", 1, 0.0)  # while the control service is unreachable
_GONE = _Config(False, "", "", "", 1, 0.0, exists=False)


@dataclass(slots=True)
class _Settle:
    """What happens to one message, decided after its invocation."""

    verdict: Verdict
    result: invocation_pb2.InvocationResult | None = None
    error: RPCError | None = None
    message: str = ""
    name: str = ""
    reason: str = ""
    # A batch entry's own outcome (the batch's result is OK when the batch ran).
    outcome: invocation_pb2.Outcome = invocation_pb2.OUTCOME_UNSPECIFIED


class DestinationWorker:
    """Delivers ``deliveries.<id>`` of one destination instance (:meth:`run`)."""

    def __init__(
        self,
        *,
        topic: str,
        settings: DeliverySettings,
        bus: Bus,
        control: ControlPlane,
    ) -> None:
        self.topic = topic
        self._settings = settings
        self._bus = bus
        self._control = control
        self._lane = control.lane(topic)  # its own InvokeStream: it never waits behind others
        self._backoff = settings.backoff()
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_open_seconds)
        self._slots = Slots(settings.concurrency)  # rounds running (or reserved for a fetch)
        self._singles = True  # whether the last fetch was for single-event rounds
        self._name = ""
        self._config: tuple[float, _Config] | None = None
        self.handlers = VersionHandlers()
        self.delivered = 0
        self._next_retire = 0.0  # monotonic time before which no retirement is tried again

    async def run(self) -> None:
        """Deliver until cancelled, or until the instance is gone and its topic retired."""
        running: set[asyncio.Task[None]] = set()
        slots = self._slots
        try:
            while True:
                pause = self.breaker.wait_time()
                if pause > 0:
                    await asyncio.sleep(pause)
                    continue
                if slots.free <= 0:
                    await slots.any_free()
                    continue
                if self.breaker.is_open:  # a probe: one event, and its verdict first
                    wanted = 1
                else:
                    if self._singles:  # one lease for several single-event rounds while busy
                        await slots.refilled()
                    wanted = slots.free
                slots.take(wanted)
                try:
                    rounds, config = await self._take(wanted)
                finally:
                    slots.release(wanted)
                if not rounds:
                    if not config.exists and not running and await self._retired():
                        return
                    continue
                slots.take(len(rounds))
                for deliveries in rounds:
                    task = asyncio.create_task(self._round(deliveries, config))
                    running.add(task)
                    task.add_done_callback(running.discard)
                if self.breaker.is_open:
                    await asyncio.wait({task})
        finally:
            for task in running:
                task.cancel()

    async def _take(self, slots: int) -> tuple[list[list[Delivery]], _Config]:
        """Rounds to run (at most ``slots``): one per event, or one batch for onBatch."""
        config = await self._current_config()
        if config.exists and not config.enabled:  # paused: messages wait on the bus
            await asyncio.sleep(self._settings.discovery_seconds)
            return [], config
        # One event at a time until the deployed version's first result says it has onBatch
        # (a batch of events for single-event handlers would share one invocation's timeout).
        self._singles = self.handlers.on_batch(config.version) is not True
        if self._singles:
            got = await self._consume(slots, 1.0)
            return [[delivery] for delivery in got], config
        got = await self._consume(config.max_count, 1.0)
        if not got:
            return [], config
        deadline = time.monotonic() + config.max_wait
        while len(got) < config.max_count and (left := deadline - time.monotonic()) > 0:
            got += await self._consume(config.max_count - len(got), min(left, 1.0))
        return [got], config

    async def _retired(self) -> bool:
        """Whether the topic of the deleted instance was retired (the bus refuses while
        anything is pending, e.g. an event routed before the routers noticed the deletion).
        Tried at most once per discovery interval: on JetStream it costs a few API calls."""
        now = time.monotonic()
        if now < self._next_retire:
            return False
        self._next_retire = now + self._settings.discovery_seconds
        try:
            retired = await self._bus.retire(self.topic, GROUP)
        except Exception:
            log.warning("retiring %s failed", self.topic, exc_info=True)
            return False
        if retired:
            log.info("%s: the destination is gone; topic retired", self.topic)
        return retired

    async def _consume(self, batch: int, wait: float) -> list[Delivery]:
        try:
            return await self._bus.consume(
                self.topic, GROUP, batch=batch, wait=wait, lease=self._settings.lease_seconds
            )
        except Exception:
            log.warning("consuming %s failed", self.topic, exc_info=True)
            await asyncio.sleep(self._settings.platform_retry_seconds)
            return []

    async def _round(self, deliveries: list[Delivery], config: _Config) -> None:
        try:
            if not self._name:
                self._name = deliveries[0].message.headers[h.INSTANCE]
            with delivery_round(self.topic, deliveries) as traced:
                settles = await self._deliver(deliveries, config)
                traced.settled([s.verdict for s in settles])
            verdicts = {s.verdict for s in settles}
            if Verdict.OK in verdicts:
                self.breaker.record_success()
            elif verdicts == {Verdict.RETRY}:
                self.breaker.record_failure()
            if all(s.verdict is Verdict.OK for s in settles):
                await self._bus.ack_many(deliveries)
                self.delivered += len(deliveries)
            else:
                await asyncio.gather(
                    *(self._settle(d, s) for d, s in zip(deliveries, settles, strict=True))
                )
        except Exception:
            log.exception("delivering %d messages on %s failed", len(deliveries), self.topic)
            for delivery in deliveries:
                await _quietly(delivery.nak(self._settings.platform_retry_seconds))
        finally:
            self._slots.release()

    async def _deliver(self, deliveries: list[Delivery], config: _Config) -> list[_Settle]:
        if not config.exists:
            gone = NotFound("the destination instance no longer exists", code=_NOT_FOUND)
            return [_Settle(Verdict.FAIL, error=gone) for _ in deliveries]
        if len(deliveries) == 1 and not config.insert_instance:  # the usual round, directly
            message = deliveries[0].message
            return await self._invoke(
                config, int(message.headers.get(h.VERSION) or 0), [message.data]
            )
        events: list[bytes | _Settle]
        if config.insert_instance:
            events = list(
                await asyncio.gather(*(self._insert(d, config.insert_instance) for d in deliveries))
            )
        else:  # no insert function: the events as they are (no task per event)
            events = [d.message.data for d in deliveries]
        settles: list[_Settle | None] = [e if isinstance(e, _Settle) else None for e in events]
        # Replays may name a version (0: the deployed one): one invocation per version.
        by_version: dict[int, list[int]] = {}
        for i, event in enumerate(events):
            if not isinstance(event, _Settle):
                version = int(deliveries[i].message.headers.get(h.VERSION) or 0)
                by_version.setdefault(version, []).append(i)
        invocations = [
            self._invoke(config, version, [events[i] for i in indices])  # type: ignore[misc]
            for version, indices in by_version.items()
        ]
        if len(invocations) == 1:  # the usual case: no task for it
            outcomes = [await invocations[0]]
        else:
            outcomes = await asyncio.gather(*invocations)
        for indices, outcome in zip(by_version.values(), outcomes, strict=True):
            for i, settle in zip(indices, outcome, strict=True):
                settles[i] = settle
        return [s if s is not None else _Settle(Verdict.OK) for s in settles]

    async def _invoke(self, config: _Config, version: int, events: list[bytes]) -> list[_Settle]:
        """One event of a version known to lack onBatch goes to its single-event handler;
        anything else is invoked as a batch, which reaches onBatch, or the single-event
        handlers one by one when the version has none (so it is right before we know)."""
        name = f"{config.function}/versions/{version}" if version else config.version
        if len(events) == 1 and self.handlers.on_batch(name) is False:
            return [await self._invoke_one(events[0], version)]
        return await self._invoke_batch(events, version)

    async def _insert(self, delivery: Delivery, insert_instance: str) -> bytes | _Settle:
        """The event after the insert instance (or a settle when it dropped or failed)."""
        data = delivery.message.data
        if not insert_instance:
            return data
        request = invocation_pb2.InvokeFunctionRequest(
            target=insert_instance, event=data, request_id=delivery.message.id
        )
        try:
            result = await self._lane.invoke(request)
        except RPCError as error:
            return _Settle(for_error(error), error=error, reason=INSERT_FAILED)
        verdict = for_outcome(result.outcome)
        if verdict is not Verdict.OK:
            return _Settle(verdict, result=result, reason=INSERT_FAILED)
        if result.outcome == invocation_pb2.OUTCOME_DROP or not result.HasField("returned"):
            return _Settle(Verdict.OK)  # filtered at the insert function: done
        return result.returned

    async def _invoke_one(self, event: bytes, version: int) -> _Settle:
        request = invocation_pb2.InvokeFunctionRequest(
            target=self._name, event=event, version=version
        )
        try:
            result = await self._lane.invoke(request)
        except RPCError as error:
            return _Settle(for_error(error), error=error)
        self.handlers.learn(result)
        if (
            result.outcome == invocation_pb2.OUTCOME_EVENT_NOT_SUPPORTED
            and self.handlers.on_batch(result.version) is True
        ):  # deployed meanwhile: a version whose events go to onBatch (no user code ran)
            return (await self._invoke_batch([event], version))[0]
        return _Settle(for_outcome(result.outcome), result=result)

    async def _invoke_batch(self, events: list[bytes], version: int) -> list[_Settle]:
        request = invocation_pb2.InvokeFunctionRequest(
            target=self._name, events=b"[" + b",".join(events) + b"]", version=version
        )
        try:
            result = await self._lane.invoke(request)
        except RPCError as error:
            return [_Settle(for_error(error), error=error) for _ in events]
        self.handlers.learn(result)
        if len(result.batch_statuses) == len(events):
            return [
                _Settle(
                    for_event_result(status),
                    result=result,
                    message=status.error_message or f"status {status.status}",
                    name=status.error_name or error_class(status.outcome),
                    outcome=status.outcome,
                )
                for status in result.batch_statuses
            ]
        return [_Settle(for_outcome(result.outcome), result=result) for _ in events]

    async def _settle(self, delivery: Delivery, settle: _Settle) -> None:
        message = delivery.message
        if settle.verdict is Verdict.OK:
            await delivery.ack()
            self.delivered += 1
            return
        first = _first_attempt(message)
        if settle.verdict is Verdict.RETRY:
            if not self._backoff.exhausted(message.attempt, time.time() - first):
                await delivery.nak(self._backoff.delay(message.attempt))
                return
            reason = RETRIES_EXHAUSTED
        else:
            reason = settle.reason or FINAL_OUTCOME
        if isinstance(settle.error, NotFound) and not settle.reason:
            log.warning("%s: the destination is gone; dropping %s", self.topic, message.id)
            await delivery.term()
            return
        record = dead_letter(
            instance=message.headers.get(h.INSTANCE, self._name),
            stage=Stage.DEAD_LETTER_STAGE_DESTINATION,
            message_id=message.headers.get(h.MESSAGE_ID) or message.id,
            reason=reason,
            attempts=message.attempt,
            first_attempt=first,
            event=message.data,
            result=settle.result,
            error=settle.error,
            error_message=settle.message if settle.result and settle.result.batch_statuses else "",
            error_name=settle.name,
            outcome=settle.outcome,
            replay_count=int(message.headers.get(h.REPLAY) or 0),
        )
        try:
            await self._control.record_dead_letters([record])
        except RPCError:
            await delivery.nak(self._settings.platform_retry_seconds)
            return
        await delivery.ack()

    async def _current_config(self) -> _Config:
        cached = self._config
        fresh = self._settings.routing_cache_seconds
        if cached is not None and time.monotonic() - cached[0] < fresh:
            return cached[1]
        try:
            # Before the first message the topic's short id names the instance (a platform
            # admin resolves it in any workspace).
            instance = await self._control.get_instance(self._name or self.topic.split(".", 1)[1])
            self._name = instance.name
            function = await self._control.get_function(instance.function)
        except NotFound:
            config = _GONE
        except RPCError:
            return cached[1] if cached is not None else _DEFAULT
        else:
            batch = function.batch
            deployed = function.deployed_version
            config = _Config(
                enabled=instance.enabled,
                insert_instance=instance.insert_instance,
                function=function.name,
                version=f"{function.name}/versions/{deployed}" if deployed else "",
                max_count=batch.max_count or self._settings.batch_max_count,
                max_wait=(batch.max_wait_ms / 1000) or self._settings.batch_max_wait_seconds,
            )
        self._config = (time.monotonic(), config)
        return config


def _first_attempt(message: object) -> float:
    headers = getattr(message, "headers", {})
    if headers.get(h.FIRST_ATTEMPT):
        return float(headers[h.FIRST_ATTEMPT])
    value = getattr(message, "published_at", None)
    if isinstance(value, int | float):
        return float(value)
    timestamp = getattr(value, "timestamp", None)
    return float(timestamp()) if callable(timestamp) else time.time()


async def _quietly(action: object) -> None:
    try:
        if asyncio.iscoroutine(action):
            await action
    except Exception:
        log.warning("could not settle a bus message", exc_info=True)
