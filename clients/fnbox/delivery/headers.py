"""Names of the bus message headers and topics the pipeline uses.

Payloads (webhook bodies, events) travel as the message data, untouched; everything the
pipeline needs to route a message without decoding it rides in these headers.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

# Topics: webhooks.<source instance id>, events.<source instance id>,
# deliveries.<destination instance id>.
WEBHOOKS = "webhooks"
EVENTS = "events"
DELIVERIES = "deliveries"

# The instance a message is for (resource name): the source on webhooks, the destination on
# deliveries.
INSTANCE = "fnbox-instance"
# The source instance that emitted an event (resource name).
SOURCE = "fnbox-source"
# The event's messageId (events and deliveries): the dedup key, read without decoding.
MESSAGE_ID = "fnbox-message-id"
# Webhook envelope: request line and headers (JSON object), and the gateway's id for it.
METHOD = "fnbox-method"
URL = "fnbox-url"
REQUEST_HEADERS = "fnbox-headers"
WEBHOOK_ID = "fnbox-webhook-id"
# RFC 3339 time the webhook reached the gateway (kept on every derived event).
RECEIVED_AT = "fnbox-received-at"
# Replays: the function version to run (0/absent = deployed) and the replay generation.
VERSION = "fnbox-version"
REPLAY = "fnbox-replay"
# Epoch seconds when the message first entered its stage (retry budget across replays).
FIRST_ATTEMPT = "fnbox-first-attempt"


def topic(kind: str, instance_name: str) -> str:
    """``kind.<short id>`` for an instance resource name ``workspaces/w/instances/<id>``."""
    return f"{kind}.{short_id(instance_name)}"


def short_id(name: str) -> str:
    """The last segment of a resource name."""
    return name.rsplit("/", 1)[-1]


def workspace_of(name: str) -> str:
    """``workspaces/w`` for any resource name under a workspace."""
    parts = name.split("/")
    return "/".join(parts[:2]) if len(parts) >= 2 and parts[0] == "workspaces" else ""


_second: list[tuple[int, str]] = [(-1, "")]  # the last whole second formatted


def rfc3339(epoch: float | None = None) -> str:
    """``2024-01-02T03:04:05.678Z`` for ``epoch`` (now when omitted)."""
    if epoch is None:
        epoch = time.time()
    fraction, integral = math.modf(epoch)  # rounded to microseconds as datetime does
    whole, micros = int(integral), round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    millis = micros // 1000
    cached_whole, prefix = _second[0]
    if whole != cached_whole:
        prefix = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _second[0] = (whole, prefix)
    return f"{prefix}{millis:03d}Z"
