"""Handler discovery, dispatch by event type, errors → outcomes, insert functions, batches."""

# ruff: noqa: E501  (embedded JavaScript reads better unwrapped)

from __future__ import annotations

import json

import pytest

from tests.runtime.conftest import Runtime

ALL_TYPES = {
    "identify": "onIdentify",
    "track": "onTrack",
    "page": "onPage",
    "screen": "onScreen",
    "group": "onGroup",
    "alias": "onAlias",
    "delete": "onDelete",
}


def test_each_type_dispatches_to_its_handler(rt: Runtime) -> None:
    code = "\n".join(
        f"async function {h}(e) {{ console.log('{h}', e.type) }}" for h in ALL_TYPES.values()
    )
    rt.loaded(code)
    for type_, handler in ALL_TYPES.items():
        r = rt.event({"type": type_})
        assert r["outcome"] == "OK", r
        assert r["logs"] == [f"{handler} {type_}"]


def test_var_and_assignment_handlers_are_found(rt: Runtime) -> None:
    rt.loaded(
        "var onTrack = async (e) => console.log('var');\nonIdentify = function () { console.log('assigned') }"
    )
    assert rt.event({"type": "track"})["logs"] == ["var"]
    assert rt.event({"type": "identify"})["logs"] == ["assigned"]


def test_missing_handler_is_event_not_supported(rt: Runtime) -> None:
    rt.loaded("async function onTrack() {}")
    r = rt.event({"type": "identify", "userId": "u"})
    assert r["outcome"] == "EVENT_NOT_SUPPORTED"
    assert r["error"]["name"] == "EventNotSupported"
    assert r["error"]["message"] == "identify not supported"


@pytest.mark.parametrize("event", [{"type": "mystery"}, {"no": "type"}, [1, 2], "text"])
def test_unknown_type_is_a_silent_ok(rt: Runtime, event: object) -> None:
    rt.loaded("async function onTrack() { throw new Error('must not run') }")
    r = rt.event(event)
    assert r["outcome"] == "OK"
    assert "error" not in r


def test_source_without_on_request(rt: Runtime) -> None:
    rt.loaded("async function onTrack() {}", "SOURCE")
    r = rt.request("{}")
    assert r["outcome"] == "EVENT_NOT_SUPPORTED"
    assert r["error"]["message"] == "request not supported"


def test_const_handler_is_a_syntax_error_with_position(rt: Runtime) -> None:
    problem = rt.call("check", code="// first line\nconst onTrack = async () => {}")["error"]
    assert problem["name"] == "SyntaxError"
    assert "already been declared" in problem["message"]
    assert (problem["line"], problem["column"]) == (2, 7)
    assert rt.call("check", code="async function onTrack() {}")["error"] is None


def test_a_stray_closing_brace_is_reported_where_it_is(rt: Runtime) -> None:
    # The code is compiled inside a wrapper function: a stray `}` closes the wrapper, and the
    # wrapper's own end, past the user's last line, used to be reported instead.
    problem = rt.call("check", code="function onTrack(e) {\n  return 1;\n}}\n")["error"]
    assert problem["name"] == "SyntaxError"
    assert "Unexpected token '}'" in problem["message"]
    assert (problem["line"], problem["column"]) == (3, 2)
    problem = rt.call("check", code="function onTrack(e) { return ; ; }}")["error"]
    assert (problem["line"], problem["column"]) == (1, 35)


def test_check_runs_nothing(rt: Runtime) -> None:
    rt.loaded("async function onTrack() {}")
    assert rt.call("check", code="console.log('ran'); while (true) {}")["error"] is None
    assert rt.stray.empty()


def test_load_reports_syntax_error_line(rt: Runtime) -> None:
    reply = rt.load("async function onTrack() {\n  let x = ;\n}")
    assert not reply["ok"]
    assert reply["error"]["name"] == "SyntaxError"
    assert reply["error"]["line"] == 2


def test_top_level_throw_rejects_load(rt: Runtime) -> None:
    reply = rt.load("\n\nthrow new TypeError('bad top level')")
    assert not reply["ok"]
    assert reply["error"]["name"] == "TypeError"
    assert reply["error"]["message"] == "bad top level"
    assert "fn.js:3" in reply["error"]["stack"]


def test_stack_points_at_user_lines(rt: Runtime) -> None:
    r = rt.run("// line 2\n// line 3\nnull.x")
    assert r["outcome"] == "ERROR"
    assert r["error"]["name"] == "TypeError"
    assert "at onTrack (fn.js:4:" in r["error"]["stack"]
    assert "sandbox.js" not in r["error"]["stack"] and "fnbox:runtime" not in r["error"]["stack"]


@pytest.mark.parametrize(
    ("throw", "outcome"),
    [
        ("new EventNotSupported('x')", "EVENT_NOT_SUPPORTED"),
        ("new InvalidEventPayload('x')", "INVALID_EVENT_PAYLOAD"),
        ("new ValidationError('x')", "VALIDATION_ERROR"),
        ("new RetryError('x')", "RETRY"),
        ("new DropEvent('x')", "ERROR"),
        ("new Error('x')", "ERROR"),
        ("'a string'", "ERROR"),
        ("{code: 42}", "ERROR"),
        ("undefined", "ERROR"),
    ],
)
def test_errors_map_to_outcomes(rt: Runtime, throw: str, outcome: str) -> None:
    r = rt.run(f"throw {throw}")
    assert r["outcome"] == outcome, r
    assert r["error"]["name"] in {"Error", throw.split("(")[0].removeprefix("new ")}


def test_error_classes_are_errors(rt: Runtime) -> None:
    names = [
        "EventNotSupported",
        "InvalidEventPayload",
        "ValidationError",
        "RetryError",
        "DropEvent",
    ]
    checks = " && ".join(
        f"new {n}('m') instanceof Error && new {n}('m').name === '{n}'" for n in names
    )
    r = rt.run(f"console.log(String({checks}))")
    assert r["logs"] == ["true"]


def test_insert_function_returns_replacement_or_drops(rt: Runtime) -> None:
    code = """
    async function onTrack(event) { event.properties = {seen: true}; return event }
    async function onIdentify(event) { }
    async function onPage(event) { throw new DropEvent('no pages') }
    """
    rt.loaded(code, "INSERT_DESTINATION")
    r = rt.event({"type": "track", "event": "E"})
    assert r["outcome"] == "OK"
    assert json.loads(r["returned"]) == {
        "type": "track",
        "event": "E",
        "properties": {"seen": True},
    }
    assert rt.event({"type": "identify"})["outcome"] == "DROP"
    r = rt.event({"type": "page"})
    assert (r["outcome"], r["error"]["message"]) == ("DROP", "no pages")
    assert rt.event({"type": "group"})["outcome"] == "EVENT_NOT_SUPPORTED"


def test_destination_return_value_is_ignored(rt: Runtime) -> None:
    r = rt.run("return {replaced: true}")
    assert (r["outcome"], r["returned"]) == ("OK", None)


def test_invalid_event_json_is_invalid_payload(rt: Runtime) -> None:
    rt.loaded("async function onTrack() {}")
    result = rt.call("invoke", kind="event", segments=["{not json", "{}"])["result"]
    assert result["outcome"] == "INVALID_EVENT_PAYLOAD"


def test_on_batch_statuses(rt: Runtime) -> None:
    code = """
    async function onBatch(events) {
      return events.slice(0, 4).map((e, i) => i === 0 ? {status: 200} : i === 1 ? {status: 500, errormessage: 'later'}
        : i === 2 ? {status: 400, errormessage: 'bad'} : {status: 429})
    }
    async function onTrack() { throw new Error('single handler must not run') }
    """
    rt.loaded(code)
    r = rt.batch([{"type": "track"}] * 5)
    assert r["outcome"] == "OK"
    got = [(b["outcome"], b["status"], b["error_message"]) for b in r["batch"]]
    assert got == [
        ("OK", 200, ""),
        ("RETRY", 500, "later"),
        ("ERROR", 400, "bad"),
        ("RETRY", 429, ""),
        ("OK", 200, ""),
    ]


def test_on_batch_throw_fails_the_whole_batch(rt: Runtime) -> None:
    rt.loaded("async function onBatch(events) { throw new RetryError('all later') }")
    r = rt.batch([{"type": "track"}, {"type": "identify"}])
    assert r["outcome"] == "RETRY"
    assert r["error"]["message"] == "all later"
    assert [b["outcome"] for b in r["batch"]] == ["RETRY", "RETRY"]


def test_batch_without_on_batch_falls_back_per_event(rt: Runtime) -> None:
    code = """
    async function onTrack(e) { if (e.event === 'retry') throw new RetryError('r'); console.log(e.event) }
    """
    rt.loaded(code)
    events = [
        {"type": "track", "event": "a"},
        {"type": "track", "event": "retry"},
        {"type": "identify"},
        {"type": "track", "event": "b"},
    ]
    r = rt.batch(events)
    got = [(b["outcome"], b["status"]) for b in r["batch"]]
    assert got == [("OK", 200), ("RETRY", 500), ("EVENT_NOT_SUPPORTED", 400), ("OK", 200)]
    assert r["batch"][2]["error_message"] == "identify not supported"
    assert r["logs"] == ["a", "b"]


def test_insert_on_batch_pairs_by_position(rt: Runtime) -> None:
    code = "async function onBatch(events) { return [Object.assign(events[0], {x: 1}), null] }"
    rt.loaded(code, "INSERT_DESTINATION")
    r = rt.batch(
        [{"type": "track", "event": "a"}, {"type": "track", "event": "b"}, {"type": "page"}]
    )
    assert [b["outcome"] for b in r["batch"]] == ["OK", "DROP", "DROP"]
    assert json.loads(r["batch"][0]["returned"]) == {"type": "track", "event": "a", "x": 1}


def test_top_level_state_persists_between_invocations(rt: Runtime) -> None:
    rt.loaded("let n = 0\nasync function onTrack() { n += 1; console.log(n) }")
    assert [rt.event({"type": "track"})["logs"] for _ in range(3)] == [["1"], ["2"], ["3"]]


def test_concurrent_invocations_keep_their_own_logs(rt: Runtime) -> None:
    code = "async function onTrack(e) { for (let i = 0; i < 3; i++) { console.log(e.event, i); await new Promise(r => setTimeout(r, 1)) } }"
    rt.loaded(code)
    ids = []
    assert rt.proc.stdin is not None
    for name in ("a", "b", "c"):
        rt._next += 1
        ids.append(rt._next)
        cmd = {
            "id": rt._next,
            "op": "invoke",
            "kind": "event",
            "segments": [json.dumps({"type": "track", "event": name}), "{}"],
        }
        rt.proc.stdin.write((json.dumps(cmd) + "\n").encode())
    rt.proc.stdin.flush()
    replies = {}
    for _ in ids:
        reply = rt.replies.get(timeout=10)
        replies[reply["id"]] = reply["result"]["logs"]
    for id_, name in zip(ids, ("a", "b", "c"), strict=True):
        assert replies[id_] == [f"{name} 0", f"{name} 1", f"{name} 2"]
