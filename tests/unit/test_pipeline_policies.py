"""Pure pipeline policies: backoff, webhook auth, event enrichment, outcome verdicts, breaker,
the integrations object, what a version's results say about onBatch."""

from __future__ import annotations

import uuid

import orjson
import pytest
from fnbox.delivery.backoff import Backoff
from fnbox.delivery.breaker import CircuitBreaker
from fnbox.delivery.handlers import VersionHandlers
from fnbox.delivery.integrations import allows, integrations_of, restricts
from fnbox.delivery.outcomes import Verdict, for_event_result, for_outcome
from fnbox.functions.v1 import invocation_pb2 as ipb
from fnbox.functions.v1 import resources_pb2
from fnbox.gateway import auth
from fnbox.gateway.enrich import enrich, message_id_for
from multidict import CIMultiDict

SEGMENT_SOURCE = Backoff(first_min=60, first_max=180, multiplier=2, max_delay=1200, max_attempts=6)


def test_source_backoff_follows_segment_bounds() -> None:
    for _ in range(200):
        assert 60 <= SEGMENT_SOURCE.delay(1) <= 180
        for attempt in range(2, 6):
            assert SEGMENT_SOURCE.delay(attempt) <= 1200
    assert not SEGMENT_SOURCE.exhausted(5, 0)
    assert SEGMENT_SOURCE.exhausted(6, 0)


def test_destination_backoff_doubles_and_stops_by_age() -> None:
    policy = Backoff(first_min=0.5, first_max=1, multiplier=2, max_delay=600, max_age=4 * 3600)
    assert 0.5 <= policy.delay(1) <= 1
    assert 4 <= policy.delay(4) <= 8
    assert 300 <= policy.delay(30) <= 600
    assert not policy.exhausted(1000, 4 * 3600 - 1)
    assert policy.exhausted(2, 4 * 3600)


def _auth(mode: int, secret: str, header: str = "") -> resources_pb2.WebhookAuth:
    return resources_pb2.WebhookAuth(mode=mode, secret=secret, header=header)  # type: ignore[arg-type]


def test_shared_secret_and_hmac_checks() -> None:
    body = b'{"a":1}'
    shared = _auth(resources_pb2.WebhookAuth.MODE_SHARED_SECRET, "s3cret")
    assert auth.verify(shared, CIMultiDict({"x-webhook-secret": "s3cret"}), body)
    assert not auth.verify(shared, CIMultiDict({"X-Webhook-Secret": "nope"}), body)
    assert not auth.verify(shared, CIMultiDict(), body)
    hmac_auth = _auth(resources_pb2.WebhookAuth.MODE_HMAC_SHA256, "k", "X-Sig")
    assert auth.verify(hmac_auth, CIMultiDict({"x-sig": auth.sign("k", body)}), body)
    assert not auth.verify(hmac_auth, CIMultiDict({"x-sig": auth.sign("k", body + b" ")}), body)
    assert not auth.verify(
        _auth(resources_pb2.WebhookAuth.MODE_HMAC_SHA256, ""), CIMultiDict(), body
    )
    assert auth.verify(resources_pb2.WebhookAuth(), CIMultiDict(), body)


def test_enrich_fills_defaults_and_keeps_given_values() -> None:
    data, message_id = enrich(
        b'{"type":"track","event":"X"}', webhook_id="w1", index=2, received_at="T"
    )
    event = orjson.loads(data)
    assert message_id == message_id_for("w1", 2) == event["messageId"]
    assert event["receivedAt"] == "T" and event["timestamp"] == "T"
    assert event["context"]["library"]["name"] == "fnbox-source-function"
    given, given_id = enrich(
        b'{"messageId":"m","timestamp":"t0","context":{"ip":"1"}}',
        webhook_id="w1",
        index=0,
        received_at="T",
    )
    assert given_id == "m"
    assert orjson.loads(given)["timestamp"] == "t0"
    assert orjson.loads(given)["context"]["ip"] == "1"
    assert message_id_for("w1", 0) != message_id_for("w1", 1) != message_id_for("w2", 1)
    with pytest.raises(ValueError):
        enrich(b"[1]", webhook_id="w", index=0, received_at="T")


@pytest.mark.parametrize(
    ("outcome", "verdict"),
    [
        (ipb.OUTCOME_OK, Verdict.OK),
        (ipb.OUTCOME_DROP, Verdict.OK),
        (ipb.OUTCOME_RETRY, Verdict.RETRY),
        (ipb.OUTCOME_TIMEOUT, Verdict.RETRY),
        (ipb.OUTCOME_ERROR, Verdict.FAIL),
        (ipb.OUTCOME_VALIDATION_ERROR, Verdict.FAIL),
        (ipb.OUTCOME_EVENT_NOT_SUPPORTED, Verdict.FAIL),
    ],
)
def test_outcome_verdicts(outcome: int, verdict: Verdict) -> None:
    assert for_outcome(outcome) is verdict  # type: ignore[arg-type]


def test_batch_status_verdicts() -> None:
    ok = ipb.EventResult(outcome=ipb.OUTCOME_OK, status=200)
    assert for_event_result(ok) is Verdict.OK
    assert for_event_result(ipb.EventResult(outcome=ipb.OUTCOME_OK, status=500)) is Verdict.RETRY
    assert for_event_result(ipb.EventResult(outcome=ipb.OUTCOME_OK, status=429)) is Verdict.RETRY
    assert for_event_result(ipb.EventResult(outcome=ipb.OUTCOME_OK, status=400)) is Verdict.FAIL


def test_breaker_opens_after_consecutive_failures_and_closes_on_success() -> None:
    breaker = CircuitBreaker(3, 30.0)
    breaker.record_failure()
    breaker.record_failure()
    assert not breaker.is_open and breaker.wait_time() == 0
    breaker.record_failure()
    assert breaker.is_open and 29 < breaker.wait_time() <= 30
    breaker.record_success()
    assert not breaker.is_open and breaker.trips == 1


KEY = "Forward (Acme)"


@pytest.mark.parametrize(
    ("integrations", "allowed"),
    [
        ({}, True),
        ({"All": True}, True),
        ({"All": False}, False),
        ({"All": False, KEY: True}, True),
        ({"All": False, KEY: {"apiKey": "options"}}, True),
        ({KEY: False}, False),
        ({"All": True, KEY: False}, False),
        ({"forward (acme)": False}, True),  # keys are case-sensitive
        ({"All": False, "forward (acme)": True}, False),
        ({"Forward": False}, True),  # the workspace is part of the key
        ({"All": "no"}, True),  # only the JSON value false disables
    ],
)
def test_integrations_object(integrations: dict[str, object], allowed: bool) -> None:
    assert allows(integrations, KEY) is allowed
    if not allowed:  # the router skips key lookups only when nothing can be blocked
        assert restricts(integrations)


def test_integrations_that_block_nothing_need_no_key_lookup() -> None:
    assert not restricts({})
    assert not restricts({"All": True, KEY: True, "Other (Acme)": {"x": 1}})
    assert restricts({"Other (Acme)": False})


def test_integrations_are_read_only_from_events_that_name_them() -> None:
    assert integrations_of(b'{"type":"track","event":"x"}') is None
    assert integrations_of(b'{"type":"track","event":"integrations"}') is None
    assert integrations_of(b'{"type":"track","integrations":{"All":false}}') == {"All": False}
    assert integrations_of(b'{"type":"track","integrations":["All"]}') is None
    assert integrations_of(b'{"integrations": nope') is None


def test_versions_are_known_to_batch_from_their_results() -> None:
    handlers = VersionHandlers(keep=2)
    v1, v2, v3 = (f"workspaces/w/functions/f/versions/{n}" for n in (1, 2, 3))
    assert handlers.on_batch(v1) is None and handlers.on_batch("") is None
    handlers.learn(ipb.InvocationResult(version=v1, handlers=["onTrack", "onBatch"]))
    handlers.learn(ipb.InvocationResult(version=v2, handlers=["onTrack"]))
    handlers.learn(ipb.InvocationResult(version=v3))  # a timeout: no worker answered
    assert (handlers.on_batch(v1), handlers.on_batch(v2), handlers.on_batch(v3)) == (
        True,
        False,
        None,
    )
    handlers.learn(ipb.InvocationResult(version=v3, handlers=["onBatch"]))
    assert handlers.on_batch(v3) is True and handlers.on_batch(v1) is None  # only 2 kept


def test_message_ids_are_the_uuid5_of_webhook_and_position() -> None:
    """A webhook redelivered after an upgrade must emit the ids the earlier version did."""
    namespace = uuid.UUID("5f1b0c2e-8a1d-4c55-9a3e-6c1f0e2b7d94")
    for webhook_id, index in [("w1", 0), ("0f" * 16, 7), ("é-ü", 12)]:
        expected = str(uuid.uuid5(namespace, f"{webhook_id}:{index}"))
        assert message_id_for(webhook_id, index) == expected
