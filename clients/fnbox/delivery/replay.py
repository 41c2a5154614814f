"""Puts dead letters queued for replay back on the bus, then removes them from the queue.

Webhooks go back to ``webhooks.<source>`` and events to ``deliveries.<destination>``, with
the replay's version in a header; dedup ids carry the replay generation, so two replicas that
claim the same dead letter (an expired lease) publish it once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from fnbox.bus import Bus
from fnbox.delivery import headers as h
from fnbox.delivery.busio import Outgoing, publish_all
from fnbox.delivery.control import ControlPlane
from fnbox.delivery.dead_letters import Stage
from fnbox.functions.v1 import dead_letters_pb2
from fnbox.gateway.envelope import webhook_headers

__all__ = ["ReplayPump"]

log = logging.getLogger(__name__)

_LEASE_SECONDS = 60
_LIMIT = 500


class ReplayPump:
    """:meth:`run` polls ``ClaimReplays`` every ``interval`` seconds."""

    def __init__(
        self,
        *,
        bus: Bus,
        control: ControlPlane,
        interval: float,
        on_topic: Callable[[str], None] = lambda topic: None,
    ) -> None:
        self._bus = bus
        self._control = control
        self._interval = interval
        self.on_topic = on_topic
        self.replayed = 0

    async def run(self) -> None:
        while True:
            try:
                claimed = await self._control.dead_letters.claim_replays(
                    limit=_LIMIT, lease_seconds=_LEASE_SECONDS
                )
                if claimed:
                    await self.replay(claimed)
                    continue
            except Exception as exc:
                log.warning("replaying dead letters failed: %s", exc)
            await asyncio.sleep(self._interval)

    async def replay(self, dead_letters: list[dead_letters_pb2.DeadLetter]) -> None:
        by_topic: dict[str, list[Outgoing]] = {}
        for dead_letter in dead_letters:
            topic, message = _message(dead_letter)
            by_topic.setdefault(topic, []).append(message)
        for topic, messages in by_topic.items():
            await publish_all(self._bus, topic, messages)
            self.on_topic(topic)
        await self._control.dead_letters.purge(names=[d.name for d in dead_letters])
        self.replayed += len(dead_letters)


def _message(dead_letter: dead_letters_pb2.DeadLetter) -> tuple[str, Outgoing]:
    generation = dead_letter.replay_count + 1
    common = {
        h.INSTANCE: dead_letter.instance,
        h.VERSION: str(dead_letter.replay_version),
        h.REPLAY: str(generation),
        h.FIRST_ATTEMPT: str(time.time()),
    }
    dedup = f"replay:{dead_letter.id}:{generation}"
    if dead_letter.stage == Stage.DEAD_LETTER_STAGE_SOURCE:
        request = dead_letter.request
        headers = webhook_headers(
            instance=dead_letter.instance,
            webhook_id=dead_letter.message_id,
            method=request.method or "POST",
            url=request.url,
            request_headers=dict(request.headers),
            received_at=h.rfc3339(dead_letter.first_attempt_time.ToSeconds() or None),
        )
        headers.update(common)
        return h.topic(h.WEBHOOKS, dead_letter.instance), Outgoing(request.body, headers, dedup)
    headers = {**common, h.MESSAGE_ID: dead_letter.message_id}
    return h.topic(h.DELIVERIES, dead_letter.instance), Outgoing(dead_letter.event, headers, dedup)
