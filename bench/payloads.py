"""The payloads every scenario sends: one realistic Segment track event (~400 bytes)."""

from __future__ import annotations

import orjson

TRIVIAL_DESTINATION = "async function onTrack(event, settings) { return }\n"

EVENT: bytes = orjson.dumps(
    {
        "type": "track",
        "event": "Order Completed",
        "userId": "user-1234567",
        "anonymousId": "3f1c9a2e-8b7d-4c1e-9f00-5a6b7c8d9e0f",
        "messageId": "ajs-next-1700000000000-0a1b2c3d",
        "timestamp": "2024-05-01T12:34:56.789Z",
        "properties": {
            "orderId": "50314b8e9bcf000000000000",
            "total": 27.5,
            "revenue": 25.0,
            "currency": "USD",
            "products": [{"productId": "507f1f77bcf86cd799439011", "sku": "45790-32", "price": 19}],
        },
        "context": {"ip": "203.0.113.7", "library": {"name": "analytics.js", "version": "2.11.1"}},
    }
)


def event_batch(size: int) -> bytes:
    """A JSON array of ``size`` copies of :data:`EVENT`, built without decoding anything."""
    return b"[" + b",".join([EVENT] * size) + b"]"


# The e2e scenario's functions, also run by `bench.relay_floor --functions`: a webhook becomes one
# track event, which the destination POSTs to the sink.
E2E_SOURCE = """
async function onRequest(request, settings) {
  const body = request.json()
  Segment.track({ event: body.event, userId: body.userId, properties: body.properties })
}
"""

E2E_DESTINATION = """
async function onTrack(event, settings) {
  const response = await fetch(settings.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(event),
  })
  if (!response.ok) throw new RetryError('sink answered ' + response.status)
}
"""

WEBHOOK = orjson.dumps(
    {
        "event": "Order Completed",
        "userId": "user-1234567",
        "properties": {"orderId": "50314b8e9bcf", "total": 27.5, "currency": "USD"},
    }
)
