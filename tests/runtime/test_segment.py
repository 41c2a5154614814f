"""Segment.* messages from source functions, validation, caps."""

# ruff: noqa: E501  (embedded JavaScript reads better unwrapped)

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.runtime.conftest import Runtime


def source(rt: Runtime, body: str, **options: Any) -> dict[str, Any]:
    rt.loaded(f"async function onRequest(request, settings) {{\n{body}\n}}", "SOURCE", **options)
    return rt.request("{}")


def events_of(result: dict[str, Any]) -> list[Any]:
    assert isinstance(result["events"], list)
    return [json.loads(e) for e in result["events"]]


def test_track_copies_known_fields_and_drops_others(rt: Runtime) -> None:
    r = source(
        rt,
        "Segment.track({event: 'X', userId: 'u', anonymousId: '', properties: {a: 1}, context: {ip: '1'},"
        " timestamp: 't', junk: 1, type: 'identify', traits: {t: 1}})",
    )
    assert r["outcome"] == "OK"
    assert events_of(r) == [
        {
            "type": "track",
            "event": "X",
            "properties": {"a": 1},
            "userId": "u",
            "context": {"ip": "1"},
            "timestamp": "t",
        }
    ]


def test_each_call_builds_its_message(rt: Runtime) -> None:
    r = source(
        rt,
        """
        Segment.identify({userId: 'u', traits: {email: 'e'}})
        Segment.page({anonymousId: 'a', name: 'Home', properties: {p: 1}})
        Segment.screen({userId: 'u', name: 'S'})
        Segment.group({userId: 'u', groupId: 'g', traits: {n: 1}})
        Segment.alias({userId: 'u', previousId: 'p'})
        Segment.set({collection: 'rooms', id: 'r1', properties: {size: 2}})
        """,
    )
    assert events_of(r) == [
        {"type": "identify", "traits": {"email": "e"}, "userId": "u"},
        {"type": "page", "name": "Home", "properties": {"p": 1}, "anonymousId": "a"},
        {"type": "screen", "name": "S", "userId": "u"},
        {"type": "group", "groupId": "g", "traits": {"n": 1}, "userId": "u"},
        {"type": "alias", "previousId": "p", "userId": "u"},
    ]
    assert [json.loads(o) for o in r["objects"]] == [
        {"collection": "rooms", "id": "r1", "properties": {"size": 2}}
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("Segment.track({userId: 'u'})", "event is required but not defined"),
        ("Segment.track({userId: 'u', event: ''})", "event is required but not defined"),
        ("Segment.identify({traits: {}})", "One of userId,anonymousId is required but not defined"),
        ("Segment.track({event: 'E'})", "One of userId,anonymousId is required but not defined"),
        ("Segment.group({userId: 'u'})", "groupId is required but not defined"),
        ("Segment.alias({userId: 'u'})", "previousId is required but not defined"),
        ("Segment.set({id: '1'})", "collection is required but not defined"),
        ("Segment.set({collection: 'c'})", "id is required but not defined"),
    ],
)
def test_validation_errors(rt: Runtime, call: str, message: str) -> None:
    r = source(rt, call)
    assert r["outcome"] == "VALIDATION_ERROR"
    assert r["error"] == {
        "name": "ValidationError",
        "message": message,
        "stack": r["error"]["stack"],
    }
    assert r["events"] == []


def test_a_throw_after_emitting_emits_nothing(rt: Runtime) -> None:
    r = source(
        rt,
        "Segment.track({event: 'X', userId: 'u'}); Segment.set({collection: 'c', id: '1'}); throw new Error('late')",
    )
    assert r["outcome"] == "ERROR"
    assert (r["events"], r["objects"]) == ([], [])


def test_source_return_value_is_ignored(rt: Runtime) -> None:
    r = source(rt, "Segment.track({event: 'X', userId: 'u'}); return {status: 500}")
    assert r["outcome"] == "OK"
    assert r["returned"] is None
    assert len(events_of(r)) == 1


def test_message_over_32kb_fails(rt: Runtime) -> None:
    r = source(
        rt, "Segment.track({event: 'X', userId: 'u', properties: {blob: 'x'.repeat(33 * 1024)}})"
    )
    assert r["outcome"] == "ERROR"
    assert (
        r["error"]["message"]
        == "failed calling Tracking API: the message is too large and over the maximum 32KB limit"
    )
    r = source(
        rt, "Segment.track({event: 'X', userId: 'u', properties: {blob: 'x'.repeat(30 * 1024)}})"
    )
    assert r["outcome"] == "OK"


def test_max_events_cap_fails_even_if_caught(rt: Runtime) -> None:
    r = source(
        rt,
        "for (let i = 0; i < 5; i++) { try { Segment.track({event: 'X', userId: 'u'}) } catch (e) {} }",
        max_events=3,
    )
    assert r["outcome"] == "ERROR"
    assert "too many messages" in r["error"]["message"]
    assert r["events"] == []


def test_max_result_bytes(rt: Runtime) -> None:
    body = "for (let i = 0; i < 10; i++) Segment.track({event: 'X', userId: 'u', properties: {p: 'y'.repeat(1000)}})"
    r = source(rt, body, max_result_bytes=5000)
    assert r["outcome"] == "ERROR"
    assert r["error"]["message"].startswith("result too large")
    assert r["events"] == []
    assert source(rt, body, max_result_bytes=50000)["outcome"] == "OK"


def test_messages_after_the_invocation_are_not_attributed(rt: Runtime) -> None:
    rt.loaded(
        "async function onRequest() { setTimeout(() => Segment.track({event: 'late', userId: 'u'}), 0) }\n"
        "async function onTrack() { await new Promise(r => setTimeout(r, 20)) }",
        "SOURCE",
    )
    assert rt.request("{}")["events"] == []
    assert rt.request("{}")["events"] == []
