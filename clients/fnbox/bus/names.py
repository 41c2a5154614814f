"""Names on the bus: validation and how they map onto NATS subjects and consumer names.

A topic is dotted tokens (``deliveries.inst_42``), each token ``[A-Za-z0-9_-]+``; a group and a
namespace are a single such token. That keeps every topic a valid, wildcard-free NATS subject
under ``<namespace>.`` and every namespace a valid JetStream stream name.
"""

from __future__ import annotations

import hashlib
import re

from fnbox.bus.errors import InvalidName

__all__ = ["check_group", "check_namespace", "check_topic", "consumer_name"]

_TOKEN = r"[A-Za-z0-9_-]+"
_TOKEN_RE = re.compile(rf"{_TOKEN}\Z")
_TOPIC_RE = re.compile(rf"{_TOKEN}(\.{_TOKEN})*\Z")
_MAX_TOPIC = 200
_READABLE = 48


def check_topic(topic: str) -> str:
    """``topic`` if it is valid, else :class:`InvalidName`."""
    if len(topic) > _MAX_TOPIC or not _TOPIC_RE.match(topic):
        raise InvalidName(f"invalid topic {topic!r}: dotted tokens of [A-Za-z0-9_-]")
    return topic


def check_group(group: str) -> str:
    """``group`` if it is valid, else :class:`InvalidName`."""
    if len(group) > 64 or not _TOKEN_RE.match(group):
        raise InvalidName(f"invalid group {group!r}: one token of [A-Za-z0-9_-]")
    return group


def check_namespace(namespace: str) -> str:
    """``namespace`` if it is valid, else :class:`InvalidName`."""
    if len(namespace) > 64 or not _TOKEN_RE.match(namespace):
        raise InvalidName(f"invalid namespace {namespace!r}: one token of [A-Za-z0-9_-]")
    return namespace


def consumer_name(group: str, topic: str) -> str:
    """The durable JetStream consumer of ``group`` on ``topic``.

    Consumer names may not contain dots and end up in file names, so the readable part is
    shortened and a hash of the exact pair keeps distinct pairs distinct
    (``a.b_c`` and ``a_b.c`` read alike).
    """
    digest = hashlib.sha256(f"{group}\0{topic}".encode()).hexdigest()[:16]
    readable = f"{group}_{topic.replace('.', '_')}"[:_READABLE]
    return f"{readable}_{digest}"
