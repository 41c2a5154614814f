"""The scale-out bus: NATS JetStream.

One stream per namespace, named after it, capturing ``<namespace>.>``; a topic is the subject
``<namespace>.<topic>``. Retention is *limits* (``max_age``), not work-queue or interest: every
group must see every message, including those published before the group's consumer existed
(interest retention would drop them), and a group's progress lives in its durable pull
consumer (one per group and topic, filtered on the topic's subject, ``ack_wait`` = the lease;
see :func:`fnbox.bus.names.consumer_name`). Because the lease is the consumer's ``ack_wait``,
the latest lease a group used on a topic applies to all its unsettled messages there: use one
lease per group and topic. ``max_age`` must exceed the longest time a message
may wait for delivery (delivery retries run for hours; the default keeps a week).

``publish`` awaits the PubAck (the stream stored it); ``publish_many`` sends every message then
awaits all the acks. ``dedup_id`` goes in the ``Nats-Msg-Id`` header, prefixed with the subject
(the stream deduplicates within its ``duplicate_window``).
Headers starting with ``Nats-`` are the server's and are not returned to consumers. Acks are
fire-and-forget (a lost ack only means one more delivery). The client reconnects by itself;
calls made while disconnected fail with ``BusUnavailable`` after ``request_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from fnbox.bus.base import Bus, Delivery, Message, PublishItem
from fnbox.bus.errors import BusClosed, BusError, BusUnavailable
from fnbox.bus.names import check_group, check_namespace, check_topic, consumer_name
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

__all__ = ["JetStreamBus", "NatsOptions"]

log = logging.getLogger(__name__)

_STREAM_CONFIG_MISMATCH = 10058
_MIN_FETCH_WAIT = 0.05
_CONSUMER_PAGE = 256  # consumers the server lists per request


@dataclass(frozen=True, slots=True)
class NatsOptions:
    """Tuning of the JetStream bus; set from the URL's query string."""

    connect_timeout: float = 5.0
    request_timeout: float = 10.0
    """How long to wait for a PubAck or a JetStream API answer."""
    max_age: float = 7 * 86400.0
    """How long the stream keeps a message (seconds)."""
    dedup_window: float = 600.0
    """The stream's ``duplicate_window`` (seconds)."""
    max_ack_pending: int = 10_000
    """Leased, unsettled messages allowed per group and topic."""
    replicas: int = 1


class JetStreamBus(Bus):
    """See the module docstring. ``servers`` are ``nats://host:port`` URLs."""

    def __init__(
        self, servers: list[str], *, namespace: str = "fnbox", options: NatsOptions | None = None
    ):
        self._servers = servers
        self._namespace = check_namespace(namespace)
        self._stream = self._namespace
        self._options = options or NatsOptions()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._consumers: dict[str, float] = {}  # consumer name -> ack_wait it was set up with
        self._idle_subs: dict[str, list[JetStreamContext.PullSubscription]] = {}
        self._background: set[asyncio.Task[None]] = set()

    @property
    def stream(self) -> str:
        """The JetStream stream holding this namespace."""
        return self._stream

    async def start(self) -> None:
        if self._nc is not None:
            return
        nc = Client()
        try:
            # The client retries forever once connected; the first connection is bounded here.
            await asyncio.wait_for(
                nc.connect(
                    servers=self._servers,
                    connect_timeout=max(1, int(self._options.connect_timeout)),
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                    error_cb=_log_error,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=_log_reconnected,
                ),
                self._options.connect_timeout,
            )
        except Exception as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            raise BusUnavailable(f"cannot connect to NATS at {self._servers}: {exc!r}") from exc
        self._nc = nc
        self._js = nc.jetstream(timeout=self._options.request_timeout)
        try:
            await self._ensure_stream()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        self._consumers.clear()
        self._idle_subs.clear()
        if nc is None:
            return
        with contextlib.suppress(Exception):
            await nc.flush(timeout=2)  # settle acks still buffered
        with contextlib.suppress(Exception):
            await nc.close()

    async def _disconnected(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            log.warning("disconnected from NATS; reconnecting")

    async def delete_namespace(self) -> None:
        """Delete the namespace's stream and every message and consumer in it (tests, teardown)."""
        js = self._jetstream()
        with _translated(), contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(self._stream)
        self._consumers.clear()

    async def publish(
        self,
        topic: str,
        data: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        dedup_id: str | None = None,
    ) -> str:
        subject = self._subject(topic)
        js = self._jetstream()
        with _translated():
            ack = await js.publish(
                subject,
                data,
                headers=_nats_headers(subject, headers, dedup_id),
                timeout=self._options.request_timeout,
            )
        return str(ack.seq)

    async def publish_many(self, topic: str, items: Sequence[PublishItem]) -> list[str]:
        subject = self._subject(topic)
        js = self._jetstream()
        futures: list[asyncio.Future[api.PubAck]] = []
        try:
            with _translated():
                async with asyncio.timeout(self._options.request_timeout):
                    for data, headers, dedup_id in items:
                        # No stall timeout: asyncio.wait_for would yield to the flusher after
                        # every message (one write each) instead of one write for the batch.
                        futures.append(
                            await js.publish_async(
                                subject,
                                data,
                                headers=_nats_headers(subject, headers, dedup_id),
                                wait_stall=None,
                            )
                        )
                    acks = await asyncio.gather(*futures)
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()
        return [str(ack.seq) for ack in acks]

    async def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        """Acks are buffered publishes: one pass queues them all and the client's flusher sends
        them together (a lost ack only means one more delivery)."""
        others: list[Delivery] = []
        with _translated():
            for delivery in deliveries:
                if isinstance(delivery, _JetStreamDelivery):
                    if not delivery._settled:
                        await delivery._msg.ack()
                        delivery._settled = True
                else:
                    others.append(delivery)
        for delivery in others:
            await delivery.ack()

    async def consume(
        self, topic: str, group: str, *, batch: int, wait: float, lease: float
    ) -> list[Delivery]:
        subject = self._subject(topic)
        check_group(group)
        if batch < 1 or lease <= 0:
            raise ValueError("batch must be >= 1 and lease > 0")
        durable = consumer_name(group, topic)
        await self._ensure_consumer(durable, subject, lease)
        js = self._jetstream()
        idle = self._idle_subs.setdefault(durable, [])
        with _translated():
            sub = idle.pop() if idle else await js.pull_subscribe_bind(durable, self._stream)
        reusable = False
        try:
            msgs = await sub.fetch(batch, timeout=max(wait, _MIN_FETCH_WAIT))
            reusable = True
        except TimeoutError:
            msgs, reusable = [], True
        except (nats.js.errors.APIError, nats.errors.Error) as exc:
            # The consumer may have been deleted under us: set it up again next time.
            self._consumers.pop(durable, None)
            raise BusUnavailable(f"fetching from {subject}: {exc!r}") from exc
        finally:
            if reusable:
                idle.append(sub)
            else:  # cancelled or failed: its inbox may still receive; drop it
                self._unsubscribe_soon(sub)
        return [_JetStreamDelivery(msg, topic) for msg in msgs]

    async def topics(self, prefix: str) -> list[str]:
        js = self._jetstream()
        base = f"{self._namespace}."
        whole_tokens = prefix == "" or prefix.endswith(".")
        subjects_filter = f"{base}{prefix}>" if whole_tokens else f"{base}>"
        with _translated():
            info = await js.stream_info(self._stream, subjects_filter=subjects_filter)
        subjects = info.state.subjects or {}
        return sorted(
            s[len(base) :]
            for s, count in subjects.items()
            if count and s[len(base) :].startswith(prefix)
        )

    async def pending(self, topic: str, group: str) -> int:
        subject = self._subject(topic)
        check_group(group)
        js = self._jetstream()
        with _translated():
            try:
                info = await js.consumer_info(self._stream, consumer_name(group, topic))
            except nats.js.errors.NotFoundError:
                return await self._stored(subject)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def retire(self, topic: str, group: str) -> bool:
        """Only when the group's consumer has nothing pending: the topic's subject is purged up
        to the last message the consumer was given (a message published meanwhile stays, and a
        new consumer, reading from the start, gets it), then the durable consumer is deleted.
        Refused while another consumer filters on the subject (found by listing the stream's
        consumers: a request per 256 of them)."""
        subject = self._subject(topic)
        check_group(group)
        durable = consumer_name(group, topic)
        js = self._jetstream()
        with _translated():
            try:
                info = await js.consumer_info(self._stream, durable)
            except nats.js.errors.NotFoundError:
                # Never consumed, or retired by another client of the group (whose consumer
                # this one may still hold: the next consume sets it up again).
                self._forget_consumer(durable)
                return await self._stored(subject) == 0
            if info.num_pending or info.num_ack_pending:
                return False
            if await self._shared(subject, durable):
                return False
            self._forget_consumer(durable)
            last = info.delivered.stream_seq or 0
            if last > 0:  # seq=0 would purge everything (the client drops a falsy seq)
                await js.purge_stream(self._stream, subject=subject, seq=last + 1)
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_consumer(self._stream, durable)
        return True

    async def _stored(self, subject: str) -> int:
        """Messages the stream holds on ``subject``."""
        stream = await self._jetstream().stream_info(self._stream, subjects_filter=subject)
        return int((stream.state.subjects or {}).get(subject, 0))

    async def _shared(self, subject: str, durable: str) -> bool:
        """Whether a consumer other than ``durable`` filters on ``subject``."""
        js = self._jetstream()
        offset = 0
        while True:
            page = await js.consumers_info(self._stream, offset=offset)
            if any(c.name != durable and c.config.filter_subject == subject for c in page):
                return True
            if len(page) < _CONSUMER_PAGE:
                return False
            offset += len(page)

    def _forget_consumer(self, durable: str) -> None:
        """Drop what this client keeps of a consumer about to be deleted."""
        self._consumers.pop(durable, None)
        for sub in self._idle_subs.pop(durable, []):
            self._unsubscribe_soon(sub)

    def _unsubscribe_soon(self, sub: JetStreamContext.PullSubscription) -> None:
        task = asyncio.get_running_loop().create_task(_unsubscribe(sub))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _ensure_stream(self) -> None:
        js = self._jetstream()
        config = api.StreamConfig(
            name=self._stream,
            subjects=[f"{self._namespace}.>"],
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            max_age=self._options.max_age,
            duplicate_window=self._options.dedup_window,
            num_replicas=self._options.replicas,
        )
        with _translated():
            try:
                await js.add_stream(config)
            except nats.js.errors.BadRequestError as exc:
                if exc.err_code != _STREAM_CONFIG_MISMATCH:
                    raise
                await js.update_stream(config)

    async def _ensure_consumer(self, durable: str, subject: str, lease: float) -> None:
        if self._consumers.get(durable) == lease:
            return
        config = api.ConsumerConfig(
            durable_name=durable,
            filter_subject=subject,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=lease,
            max_deliver=-1,
            max_ack_pending=self._options.max_ack_pending,
        )
        with _translated():
            await self._jetstream().add_consumer(self._stream, config)  # creates or updates
        self._consumers[durable] = lease

    def _subject(self, topic: str) -> str:
        return f"{self._namespace}.{check_topic(topic)}"

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise BusClosed("the JetStream bus is not started (or closed)")
        return self._js


class _JetStreamDelivery(Delivery):
    __slots__ = ("_msg", "_settled", "message")

    def __init__(self, msg: Msg, topic: str) -> None:
        meta = msg.metadata
        headers = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("Nats-")}
        self.message = Message(
            id=str(meta.sequence.stream),
            topic=topic,
            data=msg.data,
            headers=headers,
            attempt=int(meta.num_delivered),
            published_at=meta.timestamp.timestamp(),
        )
        self._msg = msg
        self._settled = False

    async def ack(self) -> None:
        if not self._settled:
            with _translated():
                await self._msg.ack()
            self._settled = True

    async def nak(self, delay: float = 0) -> None:
        if not self._settled:
            with _translated():
                await self._msg.nak(delay=delay if delay > 0 else None)
            self._settled = True

    async def term(self) -> None:
        if not self._settled:
            with _translated():
                await self._msg.term()
            self._settled = True

    async def in_progress(self) -> None:
        if not self._settled:
            with _translated():
                await self._msg.in_progress()


def _nats_headers(
    subject: str, headers: Mapping[str, str] | None, dedup_id: str | None
) -> dict[str, str] | None:
    if not headers and dedup_id is None:
        return None
    result = dict(headers or {})
    if dedup_id is not None:
        # JetStream deduplicates per stream; the bus promises per topic.
        result["Nats-Msg-Id"] = f"{subject}:{dedup_id}"
    return result


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Map nats-py's exceptions onto the bus's."""
    try:
        yield
    except BusError:
        raise
    except (TimeoutError, nats.errors.NoRespondersError) as exc:
        raise BusUnavailable(f"NATS did not answer in time: {exc!r}") from exc
    except (
        nats.errors.ConnectionClosedError,
        nats.errors.StaleConnectionError,
        nats.errors.OutboundBufferLimitError,
        nats.js.errors.NoStreamResponseError,
    ) as exc:
        raise BusUnavailable(f"NATS unavailable: {exc!r}") from exc
    except nats.js.errors.ServiceUnavailableError as exc:
        raise BusUnavailable(f"JetStream unavailable: {exc!r}") from exc
    except (nats.js.errors.Error, nats.errors.Error) as exc:
        raise BusError(f"NATS: {exc!r}") from exc


async def _unsubscribe(sub: JetStreamContext.PullSubscription) -> None:
    with contextlib.suppress(Exception):
        await sub.unsubscribe()


async def _log_error(exc: Exception) -> None:
    log.warning("NATS connection error: %r", exc)


async def _log_reconnected() -> None:
    log.info("reconnected to NATS")
