"""A webhook's bus headers and the WebhookRequest a source function gets back from them."""

from __future__ import annotations

import orjson
from fnbox.delivery import headers as h
from fnbox.gateway.envelope import webhook_headers, webhook_request


def test_request_round_trips_through_the_bus_headers() -> None:
    given = {"content-type": "application/json", "x-signature": "abc", "accept": "*/*"}
    headers = webhook_headers(
        instance="workspaces/w/instances/s",
        webhook_id="0123",
        method="PUT",
        url="http://127.0.0.1/webhooks/s?x=1",
        request_headers=given,
        received_at="2026-01-01T00:00:00.000Z",
    )
    request = webhook_request(headers, b'{"a":1}')
    assert request.method == "PUT"
    assert request.url == "http://127.0.0.1/webhooks/s?x=1"
    assert dict(request.headers) == given
    assert request.body == b'{"a":1}'


def test_values_that_are_not_strings_are_turned_into_strings() -> None:
    # Another publisher's map: every value still arrives, as text.
    headers = {h.REQUEST_HEADERS: orjson.dumps({"a": "x", "b": 2, "c": True}).decode()}
    request = webhook_request(headers, b"{}")
    assert dict(request.headers) == {"a": "x", "b": "2", "c": "True"}
    assert request.method == "POST"
    assert request.url == ""
