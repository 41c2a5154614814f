"""The webhook endpoint's HTTP contract (embedded backend: the answers do not depend on it)."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from fnbox.client import FnboxClient
from fnbox.functions.v1 import resources_pb2
from fnbox.gateway.auth import sign

from tests.e2e import pipeline
from tests.e2e.sink import Sink
from tests.e2e.system import System, eventually

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.parametrize("backend_env", ["embedded"], indirect=True),
]

FORM_SOURCE = """
async function onRequest(request) {
  const form = new URLSearchParams(request.text())
  Segment.track({ event: form.get('event'), userId: form.get('user'),
                  properties: { via: request.headers.get('content-type') } })
}
"""


async def test_error_answers(system: System, client: FnboxClient) -> None:
    src = await pipeline.source(client)
    url = pipeline.webhook_url(system.http, src)
    json_type = {"content-type": "application/json"}
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.status == 405 and response.headers["Allow"] == "POST"
        async with session.post(url, data=b"x", headers={"content-type": "text/plain"}) as r:
            assert r.status == 415
        big = b'{"a":"' + b"x" * (512 * 1024) + b'"}'
        async with session.post(url, data=big, headers=json_type) as response:
            assert response.status == 413
        async with session.post(url, data=b"{nope", headers=json_type) as response:
            assert response.status == 400
        unknown = f"{system.http}/v1/sources/in_unknown2345"
        async with session.post(unknown, data=b"{}", headers=json_type) as response:
            assert response.status == 404
        await client.instances.update(src.name, enabled=False)
        await eventually(
            lambda: _status(session, url, b"{}", json_type, 404), within=10, what="404"
        )
        await client.instances.update(src.name, enabled=True)
        await eventually(
            lambda: _status(session, url, b"{}", json_type, 202), within=10, what="202"
        )


async def test_form_body_and_hmac_authentication(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    fn = await pipeline.deployed(client, "form", resources_pb2.FUNCTION_TYPE_SOURCE, FORM_SOURCE)
    auth = resources_pb2.WebhookAuth(
        mode=resources_pb2.WebhookAuth.MODE_HMAC_SHA256, secret="topsecret", header="X-Sig"
    )
    src = await client.instances.create(fn.name, "form", webhook_auth=auth)
    assert not (await client.instances.get(src.name)).webhook_auth.secret  # never in clear
    await pipeline.destination(client, "form-endpoint", sink.url("form"), [src.name])
    url = pipeline.webhook_url(system.http, src)
    body = b"event=Signed+Up&user=ada"
    form = {"content-type": "application/x-www-form-urlencoded"}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body, headers=form) as response:
            assert response.status == 401
        bad = {**form, "X-Sig": sign("wrong", body)}
        async with session.post(url, data=body, headers=bad) as response:
            assert response.status == 401
        good = {**form, "X-Sig": sign("topsecret", body)}
        async with session.post(url, data=body, headers=good) as response:
            assert response.status == 202
            assert (await response.json())["id"]
    await eventually(lambda: len(sink.received("form")) == 1, within=30, what="the form event")
    event = sink.received("form")[0]
    assert event["event"] == "Signed Up" and event["userId"] == "ada"
    assert event["properties"] == {"via": "application/x-www-form-urlencoded"}


async def _status(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], want: int
) -> bool:
    async with session.post(url, data=body, headers=headers) as response:
        return response.status == want


_ = orjson
