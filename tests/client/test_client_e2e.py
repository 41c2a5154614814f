"""FnboxClient against the real control service (SQLite, real Node workers)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from fnbox.client import (
    FailedPrecondition,
    FnboxClient,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    invoke_request,
    webhook_request,
)
from fnbox.functions.v1 import invocation_pb2, resources_pb2

from tests.conftest import RunningServer

DESTINATION = resources_pb2.FUNCTION_TYPE_DESTINATION
DESTINATION_CODE = """
async function onTrack(event, settings) {
  console.log(`track ${event.event} for ${settings.region}`);
  if (event.event === 'Boom') throw new TypeError('boom ' + event.event);
}
"""
SOURCE_CODE = """
async function onRequest(request, settings) {
  const body = request.json();
  console.log('got ' + body.name);
  Segment.track({ event: body.name, userId: request.headers.get('x-user') });
}
"""
SCHEMA = [
    resources_pb2.SettingDefinition(
        name="region", label="Region", type=resources_pb2.SETTING_TYPE_STRING, required=True
    ),
    resources_pb2.SettingDefinition(
        name="apiKey", label="API key", type=resources_pb2.SETTING_TYPE_STRING, sensitive=True
    ),
]


@pytest.fixture
async def client(running_server: RunningServer) -> AsyncIterator[FnboxClient]:
    async with FnboxClient(running_server.address, running_server.admin_token) as c:
        yield c


async def test_function_lifecycle(client: FnboxClient) -> None:
    created = await client.functions.create(
        "Audit", DESTINATION, DESTINATION_CODE, settings_schema=SCHEMA
    )
    assert created.id and created.name.endswith("/functions/" + created.id)
    assert (created.latest_version, created.deployed_version) == (1, 0)

    by_id, by_name = (
        await client.functions.get(created.id),
        await client.functions.get(created.name),
    )
    assert by_id == by_name and [s.name for s in by_id.settings_schema] == ["region", "apiKey"]

    updated = await client.functions.update(created.id, code=DESTINATION_CODE + "\n// v2\n")
    assert updated.latest_version == 2
    renamed = await client.functions.update(created.id, display_name="Audit log")
    assert renamed.display_name == "Audit log" and renamed.code.endswith("// v2\n")

    deployed = await client.functions.deploy(created.id, version=1)
    assert deployed.deployed_version == 1
    versions = [v async for v in client.functions.iterate_versions(created.id)]
    assert [(v.version, v.deployed, v.latest) for v in versions] == [
        (2, False, True),
        (1, True, False),
    ]

    restored = await client.functions.restore(created.id, 1)
    assert (restored.version, restored.latest, restored.code) == (3, True, DESTINATION_CODE)

    assert created.id in [f.id async for f in client.functions.iterate()]
    await client.functions.delete(created.id)
    with pytest.raises(NotFound):
        await client.functions.get(created.id)


async def test_syntax_error_is_invalid_argument_with_position(client: FnboxClient) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await client.functions.create("Bad", DESTINATION, "async function onTrack(e {\n}")
    assert caught.value.reason == "SYNTAX_ERROR"
    assert caught.value.line == 1 and caught.value.column is not None


async def test_instance_settings_and_invocation(client: FnboxClient) -> None:
    function = await client.functions.create(
        "Audit", DESTINATION, DESTINATION_CODE, settings_schema=SCHEMA
    )
    await client.functions.deploy(function.id)
    instance = await client.instances.create(
        function.id, "Prod", settings={"region": "eu", "apiKey": "s3cret"}
    )
    assert json.loads(instance.settings) == {"region": "eu"}  # sensitive value never returned
    assert list(instance.sensitive_settings) == ["apiKey"] and instance.enabled

    ok = await client.invoke(instance.id, event=b'{"type":"track","event":"Signed Up"}')
    assert ok.outcome == invocation_pb2.OUTCOME_OK
    assert list(ok.logs) == ["track Signed Up for eu"]

    failed = await client.invoke(instance.name, event=b'{"type":"track","event":"Boom"}')
    assert failed.outcome == invocation_pb2.OUTCOME_ERROR
    assert (failed.error.name, failed.error.message) == ("TypeError", "boom Boom")

    updated = await client.instances.update(instance.id, settings={"region": "us"}, enabled=False)
    assert json.loads(updated.settings) == {"region": "us"} and not updated.enabled
    assert list(updated.sensitive_settings) == ["apiKey"]  # absent sensitive key kept
    assert [i.id async for i in client.instances.iterate(function=function.id)] == [instance.id]

    with pytest.raises(FailedPrecondition):
        await client.functions.delete(function.id)  # it still has an instance
    await client.instances.delete(instance.id)
    with pytest.raises(NotFound):
        await client.instances.get(instance.id)


async def test_run_unsaved_source_code_on_a_webhook(client: FnboxClient) -> None:
    request = webhook_request(
        "POST", "https://hooks.example/x", {"x-user": "u7"}, b'{"name":"Order Placed"}'
    )
    result = await client.run(resources_pb2.FUNCTION_TYPE_SOURCE, SOURCE_CODE, request=request)
    assert result.outcome == invocation_pb2.OUTCOME_OK, result
    assert list(result.logs) == ["got Order Placed"]
    [event] = [json.loads(e) for e in result.events]
    assert (event["event"], event["userId"], event["type"]) == ("Order Placed", "u7", "track")
    assert result.version == ""


async def test_invoke_many_over_the_real_stream(client: FnboxClient) -> None:
    function = await client.functions.create("Audit", DESTINATION, DESTINATION_CODE)
    requests = [
        invoke_request(
            function.id,
            event=b'{"type":"track","event":"e%d"}' % i,
            settings={"region": "r"},
        )
        for i in range(30)
    ]
    outcomes = [o async for o in client.invoke_many(requests, concurrency=8)]
    assert len(outcomes) == 30
    for outcome in outcomes:
        assert outcome.error is None and outcome.result is not None
        event = json.loads(outcome.request.event)["event"]
        assert list(outcome.result.logs) == [f"track {event} for r"]


async def test_invoke_many_reports_unknown_targets_per_request(client: FnboxClient) -> None:
    function = await client.functions.create("Audit", DESTINATION, DESTINATION_CODE)
    requests = [
        invoke_request(function.id, event=b'{"type":"track","event":"x"}', settings=b"{}"),
        invoke_request("fn_doesnotexist", event=b'{"type":"track"}'),
    ]
    outcomes = {o.request.target: o async for o in client.invoke_many(requests)}
    assert outcomes[function.id].result is not None
    assert isinstance(outcomes["fn_doesnotexist"].error, NotFound)


async def test_workspaces_and_tokens(client: FnboxClient, running_server: RunningServer) -> None:
    created = await client.workspaces.create("Team B")
    secret = created.admin_token.secret
    assert created.workspace.display_name == "Team B" and secret
    await client.functions.create("Mine", DESTINATION, DESTINATION_CODE)

    async with FnboxClient(running_server.address, secret) as team_b:
        assert (await team_b.workspaces.get()).name == created.workspace.name
        assert [f async for f in team_b.functions.iterate()] == []  # isolation
        reader = await team_b.workspaces.create_token(
            resources_pb2.ROLE_READ_ONLY, description="ci"
        )
        assert reader.secret and reader.role == resources_pb2.ROLE_READ_ONLY
        listed = await team_b.workspaces.list_tokens()
        assert reader.id in [t.id for t in listed] and not any(t.secret for t in listed)
        async with FnboxClient(running_server.address, reader.secret) as read_only:
            with pytest.raises(PermissionDenied):
                await read_only.functions.create("No", DESTINATION, DESTINATION_CODE)
        await team_b.workspaces.delete_token(reader.id)
        async with FnboxClient(running_server.address, reader.secret) as revoked:
            with pytest.raises(Unauthenticated):
                await revoked.workspaces.get()
