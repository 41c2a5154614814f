"""DeadLetterService against a real control service (grpc.aio on port 0, SQLite store)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fnbox.client import FnboxClient
from fnbox.client.dead_letters import DeadLettersAPI
from fnbox.client.errors import InvalidArgument, NotFound, PermissionDenied
from fnbox.delivery.dead_letters import FINAL_OUTCOME, Stage, dead_letter
from fnbox.functions.v1 import dead_letters_pb2, invocation_pb2, resources_pb2

from tests.conftest import RunningServer

DESTINATION = "async function onTrack(event, settings) { throw new Error('nope') }"


@pytest.fixture
async def admin(running_server: RunningServer) -> AsyncIterator[FnboxClient]:
    async with FnboxClient(running_server.address, running_server.admin_token) as client:
        yield client


async def _destination(client: FnboxClient, name: str) -> resources_pb2.Instance:
    fn = await client.functions.create(name, resources_pb2.FUNCTION_TYPE_DESTINATION, DESTINATION)
    await client.functions.deploy(fn.name)
    return await client.instances.create(fn.name, name)


def _record(instance: str, message_id: str) -> dead_letters_pb2.DeadLetter:
    result = invocation_pb2.InvocationResult(
        outcome=invocation_pb2.OUTCOME_ERROR,
        error=invocation_pb2.UserError(name="Error", message="nope"),
        logs=["tried"],
    )
    return dead_letter(
        instance=instance,
        stage=Stage.DEAD_LETTER_STAGE_DESTINATION,
        message_id=message_id,
        reason=FINAL_OUTCOME,
        attempts=1,
        first_attempt=1_700_000_000.0,
        event=b'{"type":"track","messageId":"%s"}' % message_id.encode(),
        result=result,
    )


async def test_record_list_get_replay_claim_purge(admin: FnboxClient) -> None:
    dlq = DeadLettersAPI(admin.transport)
    one = await _destination(admin, "one")
    two = await _destination(admin, "two")
    records = [_record(one.name, f"m{i}") for i in range(3)] + [_record(two.name, "x")]
    assert await dlq.record(records) == 4
    assert await dlq.record(records[:1]) == 1  # idempotent by id: still 4 entries

    page = await dlq.list(page_size=2)
    assert page.total_size == 4 and len(page.dead_letters) == 2 and page.next_page_token
    everything = [d async for d in dlq.iterate(page_size=2)]
    assert len({d.id for d in everything}) == 4
    only_one = [d async for d in dlq.iterate(instance=one.id)]
    assert {d.message_id for d in only_one} == {"m0", "m1", "m2"}

    shown = await dlq.get(only_one[0].id)
    assert shown.error.message == "nope" and list(shown.logs) == ["tried"]
    assert shown.name.startswith(one.name.split("/instances/")[0] + "/deadLetters/")
    assert shown.outcome == invocation_pb2.OUTCOME_ERROR and shown.event

    with pytest.raises(InvalidArgument):
        await dlq.replay(instance=one.id, version=99)
    assert await dlq.replay(instance=one.id) == 3
    claimed = await dlq.claim_replays(limit=10, lease_seconds=60)
    assert {d.message_id for d in claimed} == {"m0", "m1", "m2"}
    assert all(d.replay_pending for d in claimed)
    assert await dlq.claim_replays(limit=10, lease_seconds=60) == []  # leased

    assert await dlq.purge(names=[d.name for d in claimed]) == 3
    assert await dlq.purge(all=True) == 1
    assert (await dlq.list()).total_size == 0
    with pytest.raises(NotFound):
        await dlq.get(claimed[0].id)


async def test_other_workspaces_cannot_see_or_record(admin: FnboxClient) -> None:
    dlq = DeadLettersAPI(admin.transport)
    instance = await _destination(admin, "mine")
    await dlq.record([_record(instance.name, "secret")])
    created = await admin.workspaces.create("other")
    async with FnboxClient(admin.target, created.admin_token.secret) as other:
        theirs = DeadLettersAPI(other.transport)
        assert (await theirs.list()).total_size == 0
        mine = (await dlq.list()).dead_letters[0]
        with pytest.raises(NotFound):
            await theirs.get(mine.name)
        with pytest.raises(PermissionDenied):
            await theirs.record([_record(instance.name, "forged")])
        with pytest.raises(PermissionDenied):
            await theirs.claim_replays(limit=1, lease_seconds=1)
