"""SEGMENT-SPEC §2 (request object) and §8.8: what a source function's onRequest sees.

SPEC → tests
- §2 / §8.8 request.json() is synchronous and returns the parsed body [doc+boreal]
  → test_request_json_is_synchronous_and_parsed
- §2 request.json() is cached after the first call [boreal] → test_request_json_is_cached
- §2 request.json() on a text body parses with JSON.parse: invalid JSON throws SyntaxError
  [boreal] → test_request_json_of_invalid_body_throws_syntax_error
- §2 / §8.8 request.text() returns the raw text [doc+boreal] → test_request_text_is_the_raw_body
- §2 / §8.8 request.headers is a Headers instance, get() case-insensitive [boreal]
  → test_request_headers_get_is_case_insensitive
- §2 / §8.8 request.url is a WHATWG URL, url.searchParams.get() [boreal]
  → test_request_url_search_params
- §2 without a URL boreal uses https://fn.segmentapis.com/ [boreal]
  → test_request_without_url_defaults_to_segment_ingest_url
- §2 form-encoded bodies accepted (exposure undocumented; fnbox: fields object)
  → test_form_encoded_body_is_an_object_of_fields
- §2 "settings" defaults to {} for sources [boreal] → test_source_settings_default_to_empty_object
(GET rejection, 512 KiB and Content-Type are the webhook gateway's: test_pipeline.py.)
"""

# ruff: noqa: E501  (embedded JavaScript and the SPEC map read better unwrapped)

from __future__ import annotations

from typing import Any

import pytest
from fnbox.functions.v1 import invocation_pb2

from tests.conformance.harness import ERROR, OK, SOURCE, Conformance, Result, describe, request

pytestmark = pytest.mark.asyncio(loop_scope="session")


# One function shows every aspect of the request, one labelled log line each, so that the
# tests share one warm worker; request.json() comes last because it may throw.
PROBE = """
async function onRequest(request, settings) {
  const h = request.headers
  const u = request.url
  console.log('text', JSON.stringify(request.text()))
  console.log('headers', h instanceof Headers, h.get('content-type'), h.get('CONTENT-TYPE'), h.get('x-github-event'), h.has('X-Missing'))
  console.log('url', u instanceof URL, u.href, u.pathname, u.searchParams.get('q'), u.searchParams.getAll('tag').join('|'))
  console.log('settings', JSON.stringify(settings))
  const body = request.json()
  console.log('json', typeof body.then, JSON.stringify(body))
  body.touched = true
  console.log('cached', request.json() === body, request.json().touched)
}"""


async def probe(conformance: Conformance, webhook: invocation_pb2.WebhookRequest) -> Result:
    return await conformance.run(SOURCE, PROBE, request=webhook)


def line(result: Result, label: str) -> str:
    """The probe's log line labelled ``label``, without the label."""
    (found,) = [entry for entry in result.logs if entry.startswith(label + " ")]
    return found.removeprefix(label + " ")


async def test_request_json_is_synchronous_and_parsed(conformance: Conformance) -> None:
    body: dict[str, Any] = {"order": {"id": "o-1", "items": [1, 2, 3]}}
    result = await probe(conformance, request(body))
    assert result.outcome == OK, describe(result)
    assert line(result, "json") == 'undefined {"order":{"id":"o-1","items":[1,2,3]}}'


async def test_request_json_is_cached(conformance: Conformance) -> None:
    result = await probe(conformance, request({"a": 1}))
    assert line(result, "cached") == "true true", describe(result)


async def test_request_json_of_invalid_body_throws_syntax_error(
    conformance: Conformance,
) -> None:
    result = await probe(conformance, request(raw=b"{not json"))
    assert result.outcome == ERROR
    assert result.error.name == "SyntaxError"
    assert line(result, "text") == '"{not json"'


async def test_request_text_is_the_raw_body(conformance: Conformance) -> None:
    raw = b'{ "b": 2,\n  "a": "caf\xc3\xa9" }'
    result = await probe(conformance, request(raw=raw))
    assert result.outcome == OK, describe(result)
    assert line(result, "text") == '"{ \\"b\\": 2,\\n  \\"a\\": \\"café\\" }"'


async def test_request_headers_get_is_case_insensitive(conformance: Conformance) -> None:
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
    result = await probe(conformance, request({}, headers=headers))
    assert line(result, "headers") == "true application/json application/json push false"


async def test_request_url_search_params(conformance: Conformance) -> None:
    url = "https://hooks.example.com/in/abc?q=hello%20world&tag=a&tag=b"
    result = await probe(conformance, request({}, url=url))
    assert line(result, "url") == f"true {url} /in/abc hello world a|b"


async def test_request_without_url_defaults_to_segment_ingest_url(
    conformance: Conformance,
) -> None:
    result = await probe(conformance, request({}, url=""))
    assert line(result, "url").split()[1] == "https://fn.segmentapis.com/"


async def test_form_encoded_body_is_an_object_of_fields(conformance: Conformance) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    raw = b"event=Signed+Up&tag=a&tag=b"
    result = await probe(conformance, request(raw=raw, headers=form))
    assert result.outcome == OK, describe(result)
    assert line(result, "json") == 'undefined {"event":"Signed Up","tag":["a","b"]}'
    assert line(result, "text") == f'"{raw.decode()}"'


async def test_source_settings_default_to_empty_object(conformance: Conformance) -> None:
    result = await probe(conformance, request({}))
    assert line(result, "settings") == "{}", describe(result)
