"""SEGMENT-SPEC §6 (versioning, deploy, instances, names, permissions), §7 (Public API shape as
fnbox's gRPC API maps it) and §8.15.

SPEC → tests
- §6 / §8.15 Save without deploy: deployed instances keep the old code [doc]
  → test_save_without_deploy_keeps_instances_on_the_deployed_code
- §6 / §8.15 the saved version is LATEST, not DEPLOYED [doc]
  → test_saved_version_is_latest_not_deployed
- §6 Save & Deploy updates the instances [doc] → test_deploy_makes_the_saved_code_live
- §6 / §8.15 restore copies an old version to a new LATEST, live only after deploy [doc]
  → test_restore_makes_a_new_latest_copy_live_only_after_deploy
- §7 / §8.15 DELETE of a function → {status: "SUCCESS"} [API]
  → test_delete_function_answers_success
- §7 deploy answers success (fnbox: the deployed Function) [API]
  → test_deploy_answers_the_deployed_function
- §7 Version has id, author, code, isDeployed, createdAt, deployedAt [API]
  → test_version_records_author_code_and_deploy_state
- §7 resourceType SOURCE, DESTINATION, INSERT_DESTINATION, INSERT_SOURCE; list by type [API]
  → test_functions_of_each_type_are_listed_by_type
- §6 insert function display name ≤ 120 chars (longer: 500 in Segment) [doc]
  → test_insert_function_name_of_120_characters_is_accepted,
    test_insert_function_name_over_120_characters_is_rejected
- §6 instances: many per function, each with its own settings (test_settings.py); a source
  instance has its own webhook URL [doc] → test_each_source_instance_has_its_own_webhook_url
- §7 insert instances: settings, enabled flag [API] → test_disabled_insert_instance_is_not_invoked
- §6 functions are scoped to one workspace [doc] → test_functions_are_scoped_to_one_workspace
- §6 read-only role cannot edit functions [doc] → test_read_only_token_cannot_edit_functions
"""

from __future__ import annotations

import grpc
import pytest
from fnbox.client import FailedPrecondition, FnboxClient, NotFound, PermissionDenied
from fnbox.functions.v1 import service_pb2, service_pb2_grpc

from tests.conformance.harness import (
    DESTINATION,
    INSERT_DESTINATION,
    INSERT_SOURCE,
    SOURCE,
    Conformance,
    describe,
    event,
    pb,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


def says(word: str) -> str:
    return f"async function onTrack(event) {{ console.log('{word}') }}"


async def said(conformance: Conformance, target: str) -> list[str]:
    result = await conformance.invoke(target, event=event())
    return list(result.logs)


async def test_save_without_deploy_keeps_instances_on_the_deployed_code(
    conformance: Conformance,
) -> None:
    fn = await conformance.deployed(DESTINATION, says("v1"))
    instance = await conformance.instance(fn.name)
    saved = await conformance.client.functions.update(fn.name, code=says("v2"))
    assert (saved.latest_version, saved.deployed_version) == (2, 1)
    assert await said(conformance, instance.name) == ["v1"]


async def test_saved_version_is_latest_not_deployed(conformance: Conformance) -> None:
    fn = await conformance.deployed(DESTINATION, says("v1"))
    await conformance.client.functions.update(fn.name, code=says("v2"))
    versions = (await conformance.client.functions.list_versions(fn.name)).versions
    assert [(v.version, v.latest, v.deployed) for v in versions] == [
        (2, True, False),
        (1, False, True),
    ]


async def test_deploy_makes_the_saved_code_live(conformance: Conformance) -> None:
    fn = await conformance.deployed(DESTINATION, says("v1"))
    instance = await conformance.instance(fn.name)
    await conformance.client.functions.update(fn.name, code=says("v2"))
    await conformance.client.functions.deploy(fn.name)
    assert await said(conformance, instance.name) == ["v2"]


async def test_restore_makes_a_new_latest_copy_live_only_after_deploy(
    conformance: Conformance,
) -> None:
    functions = conformance.client.functions
    fn = await conformance.deployed(DESTINATION, says("v1"))
    instance = await conformance.instance(fn.name)
    await functions.update(fn.name, code=says("v2"))
    await functions.deploy(fn.name)
    restored = await functions.restore(fn.name, 1)
    assert (restored.version, restored.code, restored.latest, restored.deployed) == (
        3,
        says("v1"),
        True,
        False,
    )
    assert await said(conformance, instance.name) == ["v2"]
    await functions.deploy(fn.name)
    assert await said(conformance, instance.name) == ["v1"]
    versions = (await functions.list_versions(fn.name)).versions
    assert [(v.version, v.deployed) for v in versions] == [(3, True), (2, False), (1, False)]


async def test_delete_function_answers_success(conformance: Conformance) -> None:
    fn = await conformance.deployed(DESTINATION, says("bye"))
    stub = service_pb2_grpc.FunctionServiceStub(conformance.client.transport.channel)
    metadata = (("authorization", f"Bearer {conformance.token}"),)
    answer = await stub.DeleteFunction(
        service_pb2.DeleteFunctionRequest(name=fn.name), metadata=metadata
    )
    assert answer.status == "SUCCESS"
    with pytest.raises(NotFound):
        await conformance.client.functions.get(fn.name)


async def test_deploy_answers_the_deployed_function(conformance: Conformance) -> None:
    made = await conformance.client.functions.create(
        "deploy me", SOURCE, "async function onRequest() {}"
    )
    assert made.deployed_version == 0 and not made.HasField("deploy_time")
    deployed = await conformance.client.functions.deploy(made.name)
    assert deployed.deployed_version == 1 and deployed.HasField("deploy_time")


async def test_version_records_author_code_and_deploy_state(conformance: Conformance) -> None:
    fn = await conformance.deployed(DESTINATION, says("v1"))
    (version,) = (await conformance.client.functions.list_versions(fn.name)).versions
    assert version.name == f"{fn.name}/versions/1"
    assert version.code == says("v1") and version.author
    assert version.deployed and version.HasField("create_time") and version.HasField("deploy_time")


async def test_functions_of_each_type_are_listed_by_type(conformance: Conformance) -> None:
    code = {
        SOURCE: "async function onRequest() {}",
        DESTINATION: "async function onTrack() {}",
        INSERT_DESTINATION: "async function onTrack(e) { return e }",
        INSERT_SOURCE: "async function onTrack(e) { return e }",
    }
    made = {
        type: await conformance.client.functions.create(f"typed {type}", type, body)
        for type, body in code.items()
    }
    for type, fn in made.items():
        listed = [f.name async for f in conformance.client.functions.iterate(type=type)]
        assert fn.name in listed
        others = [other.name for t, other in made.items() if t != type]
        assert not set(others) & set(listed)


async def test_insert_function_name_of_120_characters_is_accepted(
    conformance: Conformance,
) -> None:
    name = "n" * 120
    made = await conformance.client.functions.create(
        name, INSERT_DESTINATION, "async function onTrack(e) { return e }"
    )
    assert made.display_name == name


async def test_insert_function_name_over_120_characters_is_rejected(
    conformance: Conformance,
) -> None:
    from fnbox.client import InvalidArgument

    with pytest.raises(InvalidArgument) as caught:
        await conformance.client.functions.create(
            "n" * 121, INSERT_DESTINATION, "async function onTrack(e) { return e }"
        )
    assert caught.value.reason == "DISPLAY_NAME_TOO_LONG"


async def test_each_source_instance_has_its_own_webhook_url(conformance: Conformance) -> None:
    fn = await conformance.deployed(SOURCE, "async function onRequest() {}")
    first = await conformance.instance(fn.name, name="a")
    second = await conformance.instance(fn.name, name="b")
    assert first.webhook_url and second.webhook_url
    assert first.webhook_url != second.webhook_url
    assert first.webhook_url.endswith(first.id)


async def test_disabled_insert_instance_is_not_invoked(conformance: Conformance) -> None:
    fn = await conformance.deployed(INSERT_DESTINATION, "async function onTrack(e) { return e }")
    instance = await conformance.client.instances.create(fn.name, "paused insert", enabled=False)
    assert not instance.enabled
    with pytest.raises(FailedPrecondition) as caught:
        await conformance.invoke(instance.name, event=event())
    assert caught.value.reason == "INSTANCE_DISABLED"
    await conformance.client.instances.update(instance.name, enabled=True)
    result = await conformance.invoke(instance.name, event=event())
    assert result.HasField("returned"), describe(result)


async def test_functions_are_scoped_to_one_workspace(conformance: Conformance) -> None:
    fn = await conformance.deployed(DESTINATION, says("mine"))
    other = await conformance.client.workspaces.create("other workspace")
    async with FnboxClient(conformance.target, other.admin_token.secret) as outsider:
        with pytest.raises(NotFound):
            await outsider.functions.get(fn.name)
        with pytest.raises(NotFound):
            await outsider.invoke(fn.name, event=event())
        listed = [f.name async for f in outsider.functions.iterate()]
        assert fn.name not in listed


async def test_read_only_token_cannot_edit_functions(conformance: Conformance) -> None:
    fn = await conformance.deployed(DESTINATION, says("ro"))
    token = await conformance.client.workspaces.create_token(pb.ROLE_READ_ONLY)
    async with FnboxClient(conformance.target, token.secret) as reader:
        assert (await reader.functions.get(fn.name)).name == fn.name
        with pytest.raises(PermissionDenied):
            await reader.functions.update(fn.name, code=says("changed"))
        with pytest.raises(PermissionDenied):
            await reader.functions.create("x", DESTINATION, says("x"))


_ = grpc
