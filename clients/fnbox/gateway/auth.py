"""Webhook authentication: a shared secret or an HMAC-SHA256 signature of the raw body."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from fnbox.functions.v1 import resources_pb2

__all__ = ["DEFAULT_HMAC_HEADER", "DEFAULT_SECRET_HEADER", "verify"]

DEFAULT_SECRET_HEADER = "X-Webhook-Secret"
DEFAULT_HMAC_HEADER = "X-Webhook-Signature"

Mode = resources_pb2.WebhookAuth


def verify(auth: resources_pb2.WebhookAuth, headers: Mapping[str, str], body: bytes) -> bool:
    """True when the request satisfies ``auth`` (always, when no mode is configured).

    ``headers`` must be a case-insensitive mapping (aiohttp's ``CIMultiDictProxy``).
    A configured mode without a stored secret refuses everything.
    """
    if auth.mode == Mode.MODE_UNSPECIFIED:
        return True
    if not auth.secret:
        return False
    secret = auth.secret.encode()
    if auth.mode == Mode.MODE_SHARED_SECRET:
        given = headers.get(auth.header or DEFAULT_SECRET_HEADER, "")
        return hmac.compare_digest(given.encode(), secret)
    if auth.mode == Mode.MODE_HMAC_SHA256:
        given = headers.get(auth.header or DEFAULT_HMAC_HEADER, "").strip()
        given = given.removeprefix("sha256=").lower()
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given.encode(), expected.encode())
    return False


def sign(secret: str, body: bytes) -> str:
    """The signature header value a sender computes: ``sha256=<hex hmac>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
