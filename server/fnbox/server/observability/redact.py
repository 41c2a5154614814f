"""Replacing sensitive setting values by ``[REDACTED]`` in what logs keep and stream.

The values are searched as they are, JSON-escaped (inside an event or settings JSON) and
URL-encoded (inside a request URL). Values shorter than :data:`MIN_LENGTH` characters are left
alone: they would match all over the text and hide nothing worth hiding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["MIN_LENGTH", "REDACTED", "SENSITIVE_HEADERS", "Redactor", "secret_strings"]

REDACTED = "[REDACTED]"
MIN_LENGTH = 4
# Request headers whose values are credentials whatever the settings say.
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)


def secret_strings(value: Any) -> Iterator[str]:
    """Every string (and number) inside a setting value (string, array or text map)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        yield str(value)
    elif isinstance(value, list):
        for item in value:
            yield from secret_strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from secret_strings(item)


class Redactor:
    """Replaces the given secret values in text and bytes."""

    def __init__(self, secrets: Iterable[str]) -> None:
        needles: set[str] = set()
        for secret in secrets:
            if len(secret) < MIN_LENGTH:
                continue
            needles.add(secret)
            needles.add(json.dumps(secret)[1:-1])
            needles.add(json.dumps(secret, ensure_ascii=False)[1:-1])
            needles.add(quote(secret, safe=""))
            needles.add(quote_plus(secret, safe=""))
        ordered = sorted(needles, key=len, reverse=True)  # longest first: no partial leftovers
        self._text = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._bytes = (
            re.compile(b"|".join(re.escape(n.encode()) for n in ordered)) if ordered else None
        )

    @property
    def empty(self) -> bool:
        return self._text is None

    def text(self, value: str) -> str:
        if self._text is None or not value:
            return value
        return self._text.sub(REDACTED, value)

    def data(self, value: bytes) -> bytes:
        if self._bytes is None or not value:
            return value
        return self._bytes.sub(REDACTED.encode(), value)
