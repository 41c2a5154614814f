"""The source function's request object."""

# ruff: noqa: E501  (embedded JavaScript reads better unwrapped)

from __future__ import annotations

import json

from tests.runtime.conftest import Runtime


def test_json_text_headers_url(rt: Runtime) -> None:
    code = """
    async function onRequest(request, settings) {
      const a = request.json(); const b = request.json();
      console.log(a === b, a.n, typeof a.then, request.text())
      console.log(request.headers.get('X-Custom'), request.headers.get('x-custom'), request.headers instanceof Headers)
      console.log(request.url instanceof URL, request.url.searchParams.get('q'), request.url.searchParams.getAll('m').join('+'), request.url.pathname)
      console.log(settings.apiKey)
    }
    """
    rt.loaded(code, "SOURCE")
    r = rt.request(
        '{"n": 1}',
        headers={"Content-Type": "application/json", "X-Custom": "yes"},
        url="https://fn.example/hook/abc?q=hello%20world&m=1&m=2",
        settings={"apiKey": "k"},
    )
    assert r["outcome"] == "OK", r
    assert r["logs"] == [
        'true 1 undefined {"n": 1}',
        "yes yes true",
        "true hello world 1+2 /hook/abc",
        "k",
    ]


def test_invalid_json_is_a_syntax_error(rt: Runtime) -> None:
    rt.loaded("async function onRequest(request) { request.json() }", "SOURCE")
    r = rt.request("{nope")
    assert r["outcome"] == "ERROR"
    assert r["error"]["name"] == "SyntaxError"


def test_text_of_a_non_json_body(rt: Runtime) -> None:
    rt.loaded("async function onRequest(request) { console.log(request.text()) }", "SOURCE")
    assert rt.request("plain ü text", headers={"content-type": "text/plain"})["logs"] == [
        "plain ü text"
    ]


def test_form_body_json_returns_the_fields(rt: Runtime) -> None:
    rt.loaded(
        "async function onRequest(request) { console.log(JSON.stringify(request.json()), request.text()) }",
        "SOURCE",
    )
    r = rt.request(
        "a=1&b=x+y&c=%C3%BC&c=2", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r["logs"] == ['{"a":"1","b":"x y","c":["ü","2"]} a=1&b=x+y&c=%C3%BC&c=2']


def test_runtime_keeps_its_intrinsics_when_user_code_replaces_globals(rt: Runtime) -> None:
    # The runtime's scripts hold the intrinsics they use as locals (a global name in a vm
    # context is an interceptor call per use): a top level that overwrites the globals changes
    # what the user's own code sees, not how the request, Segment.* and the result are built.
    code = """
    const keep = { Object, Array, String, Map, JSON };
    Object = Array = String = Number = Map = Set = Symbol = Math = Date = undefined;
    async function onRequest(request, settings) {
      const body = request.json()
      keep.Object.assign(body, { seen: typeof String });
      console.log(request.headers.get('X-A'), request.url.pathname, keep.JSON.stringify(body))
      Segment.track({ event: body.event, userId: 'u', properties: body })
    }
    """
    rt.loaded(code, "SOURCE")
    for _ in range(2):
        r = rt.request('{"event": "E"}', headers={"X-A": " 1 ", "Content-Type": "application/json"})
        assert r["outcome"] == "OK", r
        assert r["logs"] == ['1 /hook {"event":"E","seen":"undefined"}']
        assert [json.loads(e) for e in r["events"]] == [
            {
                "type": "track",
                "event": "E",
                "properties": {"event": "E", "seen": "undefined"},
                "userId": "u",
            }
        ]
