"""console capture: util.format-like output, log cap, stray output."""

# ruff: noqa: E501  (embedded JavaScript reads better unwrapped)

from __future__ import annotations

import queue

from tests.runtime.conftest import Runtime


def test_formatting_like_node(rt: Runtime) -> None:
    body = r"""
    console.log('s=%s d=%d i=%i j=%j %%', 'str', 4.5, 4.5, {a: 1}, 'extra')
    console.info({a: 'x', b: [1, 2], n: null, u: undefined, f() {}}, [1, [2, [3, [4]]]])
    console.warn(new Map([['k', 1]]), new Set([1]), -0, 10n, Symbol('s'))
    console.error({deep: {a: {b: {c: {}}}}}, 'x\ny')
    console.debug(Object.create(null), new (class Foo { constructor() { this.x = 1 } })())
    """
    r = rt.run(body)
    assert r["logs"] == [
        's=str d=4.5 i=4 j={"a":1} % extra',
        "{ a: 'x', b: [ 1, 2 ], n: null, u: undefined, f: [Function: f] } [ 1, [ 2, [ 3, [Array] ] ] ]",
        "Map(1) { 'k' => 1 } Set(1) { 1 } -0 10n Symbol(s)",
        "{ deep: { a: { b: [Object] } } } x\ny",
        "[Object: null prototype] {} Foo { x: 1 }",
    ]


def test_errors_print_their_stack(rt: Runtime) -> None:
    r = rt.run("console.log(new RangeError('r'))")
    assert r["logs"][0].startswith("RangeError: r\n    at onTrack (fn.js:2:")


def test_log_cap_adds_a_marker(rt: Runtime) -> None:
    r = rt.run("for (let i = 0; i < 100; i++) console.log('x'.repeat(99))", max_log_bytes=1000)
    assert r["logs_truncated"] is True
    assert r["logs"][:10] == ["x" * 99] * 10
    assert len(r["logs"]) == 11
    assert r["logs"][-1] == "… logs truncated (9000 bytes dropped)"
    r = rt.run("console.log('small')", max_log_bytes=1000)
    assert (r["logs"], r["logs_truncated"]) == (["small"], False)


def test_late_output_is_a_stray_log(rt: Runtime) -> None:
    r = rt.run("setTimeout(() => console.log('late line'), 5)")
    assert r["logs"] == []
    assert rt.stray.get(timeout=5) == "late line"


def test_unhandled_rejection_does_not_kill_the_worker(rt: Runtime) -> None:
    r = rt.run(
        "Promise.reject(new Error('nobody listens')); await new Promise(r => setTimeout(r, 5))"
    )
    assert r["outcome"] == "OK"
    got = list(r["logs"])
    try:
        got.append(rt.stray.get(timeout=0.5))
    except queue.Empty:
        pass
    assert any("Unhandled promise rejection: Error: nobody listens" in line for line in got)
    assert rt.run("console.log('alive')")["logs"] == ["alive"]
