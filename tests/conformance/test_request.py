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

from __future__ import annotations

import pytest

from tests.conformance.harness import ERROR, OK, SOURCE, Conformance, describe, request

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_request_json_is_synchronous_and_parsed(conformance: Conformance) -> None:
    code = """
    async function onRequest(request) {
      const body = request.json()
      console.log(typeof body.then, body.order.id, body.order.items.length)
    }"""
    body = {"order": {"id": "o-1", "items": [1, 2, 3]}}
    result = await conformance.run(SOURCE, code, request=request(body))
    assert result.outcome == OK, describe(result)
    assert list(result.logs) == ["undefined o-1 3"]


async def test_request_json_is_cached(conformance: Conformance) -> None:
    code = """
    async function onRequest(request) {
      const first = request.json()
      first.touched = true
      console.log(request.json() === first, request.json().touched)
    }"""
    result = await conformance.run(SOURCE, code, request=request({"a": 1}))
    assert list(result.logs) == ["true true"], describe(result)


async def test_request_json_of_invalid_body_throws_syntax_error(
    conformance: Conformance,
) -> None:
    code = "async function onRequest(request) { request.json() }"
    result = await conformance.run(SOURCE, code, request=request(raw=b"{not json"))
    assert result.outcome == ERROR
    assert result.error.name == "SyntaxError"


async def test_request_text_is_the_raw_body(conformance: Conformance) -> None:
    raw = b'{ "b": 2,\n  "a": "caf\xc3\xa9" }'
    code = "async function onRequest(request) { console.log(JSON.stringify(request.text())) }"
    result = await conformance.run(SOURCE, code, request=request(raw=raw))
    assert result.outcome == OK, describe(result)
    assert list(result.logs) == ['"{ \\"b\\": 2,\\n  \\"a\\": \\"café\\" }"']


async def test_request_headers_get_is_case_insensitive(conformance: Conformance) -> None:
    code = """
    async function onRequest(request) {
      const h = request.headers
      console.log(h instanceof Headers, h.get('content-type'), h.get('CONTENT-TYPE'),
                  h.get('x-github-event'), h.has('X-Missing'))
    }"""
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
    result = await conformance.run(SOURCE, code, request=request({}, headers=headers))
    assert result.outcome == OK, describe(result)
    assert list(result.logs) == ["true application/json application/json push false"]


async def test_request_url_search_params(conformance: Conformance) -> None:
    code = """
    async function onRequest(request) {
      const u = request.url
      console.log(u instanceof URL, u.pathname, u.searchParams.get('q'),
                  u.searchParams.getAll('tag').join('|'))
    }"""
    url = "https://hooks.example.com/in/abc?q=hello%20world&tag=a&tag=b"
    result = await conformance.run(SOURCE, code, request=request({}, url=url))
    assert result.outcome == OK, describe(result)
    assert list(result.logs) == ["true /in/abc hello world a|b"]


async def test_request_without_url_defaults_to_segment_ingest_url(
    conformance: Conformance,
) -> None:
    code = "async function onRequest(request) { console.log(request.url.href) }"
    result = await conformance.run(SOURCE, code, request=request({}, url=""))
    assert list(result.logs) == ["https://fn.segmentapis.com/"], describe(result)


async def test_form_encoded_body_is_an_object_of_fields(conformance: Conformance) -> None:
    code = """
    async function onRequest(request) {
      console.log(JSON.stringify(request.json()), request.text())
    }"""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    raw = b"event=Signed+Up&tag=a&tag=b"
    result = await conformance.run(SOURCE, code, request=request(raw=raw, headers=form))
    assert result.outcome == OK, describe(result)
    assert list(result.logs) == ['{"event":"Signed Up","tag":["a","b"]} ' + raw.decode()]


async def test_source_settings_default_to_empty_object(conformance: Conformance) -> None:
    code = "async function onRequest(request, settings) { console.log(JSON.stringify(settings)) }"
    result = await conformance.run(SOURCE, code, request=request({}))
    assert list(result.logs) == ["{}"], describe(result)
