"""A webhook as it rests on the bus: the raw body as data, the request line in headers."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from fnbox.delivery import headers as h
from fnbox.functions.v1 import invocation_pb2

__all__ = ["webhook_headers", "webhook_request"]


def webhook_headers(
    *,
    instance: str,
    webhook_id: str,
    method: str,
    url: str,
    request_headers: Mapping[str, str],
    received_at: str,
) -> dict[str, str]:
    """Bus headers for a webhook of source ``instance`` (resource name)."""
    return {
        h.INSTANCE: instance,
        h.WEBHOOK_ID: webhook_id,
        h.METHOD: method,
        h.URL: url,
        h.REQUEST_HEADERS: orjson.dumps(dict(request_headers)).decode(),
        h.RECEIVED_AT: received_at,
    }


def webhook_request(headers: Mapping[str, str], body: bytes) -> invocation_pb2.WebhookRequest:
    """The ``WebhookRequest`` a source function receives, rebuilt from a bus message."""
    request = invocation_pb2.WebhookRequest(
        method=headers.get(h.METHOD, "POST"), url=headers.get(h.URL, ""), body=body
    )
    request_headers = orjson.loads(headers.get(h.REQUEST_HEADERS, "{}"))
    try:
        # The gateway stores strings: the decoded map goes in as it is (no copy per webhook).
        request.headers.update(request_headers)
    except TypeError:  # a value that is not a string (another publisher)
        request.headers.clear()
        request.headers.update({str(k): str(v) for k, v in request_headers.items()})
    return request
