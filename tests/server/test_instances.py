"""InstanceService: settings validation, secrets at rest, links, update semantics."""

from __future__ import annotations

import sqlite3

import grpc
import orjson
from fnbox.functions.v1 import invocation_pb2 as ipb
from fnbox.functions.v1 import resources_pb2 as pb
from fnbox.functions.v1 import service_pb2 as spb
from google.protobuf import field_mask_pb2

from tests.conftest import RunningServer
from tests.server.helpers import SOURCE_CODE, Api, rpc_error, setting

INVALID = grpc.StatusCode.INVALID_ARGUMENT
SECRET = "s3cr3t-value-that-must-not-leak"
SCHEMA = [
    setting("apiKey", sensitive=True, required=True),
    setting("region", required=True),
    setting("verbose", pb.SETTING_TYPE_BOOLEAN),
    setting("tags", pb.SETTING_TYPE_ARRAY),
    setting("labels", pb.SETTING_TYPE_TEXT_MAP),
]
ECHO_SETTINGS = "async function onTrack(event, settings) { console.log(JSON.stringify(settings)); }"


async def _update(api: Api, instance: pb.Instance, *paths: str) -> pb.Instance:
    request = spb.UpdateInstanceRequest(
        instance=instance, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
    )
    result: pb.Instance = await api.instances.UpdateInstance(request, metadata=api.metadata)
    return result


async def _settings_seen(api: Api, instance: str) -> dict[str, object]:
    result = await api.functions.InvokeFunction(
        ipb.InvokeFunctionRequest(target=instance, event=b'{"type":"track","event":"e"}'),
        metadata=api.metadata,
    )
    assert result.outcome == ipb.OUTCOME_OK, result
    seen: dict[str, object] = orjson.loads(result.logs[0])
    return seen


async def test_settings_are_validated_against_the_schema(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    fn = await api.create_function(schema=SCHEMA)
    good = {"apiKey": "k", "region": "eu", "verbose": True, "tags": ["a"], "labels": {"a": "b"}}
    cases = [
        ({**good, "nope": 1}, "UNKNOWN_SETTING", "nope"),
        ({k: v for k, v in good.items() if k != "region"}, "MISSING_SETTING", "region"),
        ({k: v for k, v in good.items() if k != "apiKey"}, "MISSING_SETTING", "apiKey"),
        ({**good, "region": ""}, "MISSING_SETTING", "region"),
        ({**good, "verbose": "yes"}, "INVALID_SETTING_VALUE", "verbose"),
        ({**good, "tags": ["a", 1]}, "INVALID_SETTING_VALUE", "tags"),
        ({**good, "labels": {"a": 2}}, "INVALID_SETTING_VALUE", "labels"),
        ({**good, "region": 5}, "INVALID_SETTING_VALUE", "region"),
    ]
    for values, reason, name in cases:
        info = await rpc_error(
            api.create_instance(fn.name, settings=orjson.dumps(values)), INVALID, reason
        )
        assert info.metadata["setting"] == name
    await rpc_error(api.create_instance(fn.name, settings=b"[1]"), INVALID, "INVALID_JSON")
    await rpc_error(api.create_instance(fn.name, settings=b"{bad"), INVALID, "INVALID_JSON")
    await rpc_error(api.create_instance(""), INVALID, "FUNCTION_REQUIRED")
    created = await api.create_instance(fn.id, settings=orjson.dumps(good))
    assert created.id.startswith("in_") and created.enabled
    assert created.function == fn.name and created.function_type == pb.FUNCTION_TYPE_DESTINATION
    assert not created.webhook_url


async def test_sensitive_values_are_encrypted_and_never_returned(
    running_server: RunningServer,
) -> None:
    api = Api.of(running_server)
    fn = await api.create_function(code=ECHO_SETTINGS, schema=SCHEMA)
    await api.deploy(fn.name)
    values = {"apiKey": SECRET, "region": "eu"}
    created = await api.create_instance(fn.name, settings=orjson.dumps(values))
    got = await api.instances.GetInstance(
        spb.GetInstanceRequest(name=created.name), metadata=api.metadata
    )
    listed = await api.instances.ListInstances(spb.ListInstancesRequest(), metadata=api.metadata)
    for shown in (created, got, listed.instances[0]):
        assert orjson.loads(shown.settings) == {"region": "eu"}
        assert list(shown.sensitive_settings) == ["apiKey"]
        assert SECRET not in str(shown)
    # The function still runs with the clear value.
    assert await _settings_seen(api, created.id) == values
    # On disk: nowhere in the database files, in clear.
    files = sorted(running_server.data_dir.glob("registry.db*"))
    assert files and all(SECRET.encode() not in path.read_bytes() for path in files)
    with sqlite3.connect(running_server.data_dir / "registry.db") as conn:
        (stored,) = conn.execute(
            "SELECT secret_settings FROM instances WHERE id = ?", (created.id,)
        ).fetchone()
    assert set(orjson.loads(stored)) == {"apiKey"} and SECRET not in stored


async def test_update_semantics_of_settings(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    schema = [*SCHEMA[:1], setting("region"), setting("other", sensitive=True)]
    fn = await api.create_function(code=ECHO_SETTINGS, schema=schema)
    await api.deploy(fn.name)
    first = {"apiKey": SECRET, "other": "o", "region": "eu"}
    inst = await api.create_instance(fn.name, settings=orjson.dumps(first))

    # Absent sensitive keys keep their value; non-sensitive ones are replaced as a whole.
    kept = await _update(api, pb.Instance(name=inst.name, settings=b'{"region": "us"}'), "settings")
    assert sorted(kept.sensitive_settings) == ["apiKey", "other"]
    assert await _settings_seen(api, inst.id) == {**first, "region": "us"}
    dropped = await _update(api, pb.Instance(name=inst.id, settings=b"{}"), "settings")
    assert orjson.loads(dropped.settings) == {}
    # null removes a sensitive value; a new value replaces it.
    removed = await _update(
        api, pb.Instance(name=inst.id, settings=b'{"other": null, "apiKey": "new"}'), "settings"
    )
    assert list(removed.sensitive_settings) == ["apiKey"]
    assert await _settings_seen(api, inst.id) == {"apiKey": "new"}
    # apiKey is required: removing it is refused and nothing changes.
    await rpc_error(
        _update(api, pb.Instance(name=inst.id, settings=b'{"apiKey": null}'), "settings"),
        INVALID,
        "MISSING_SETTING",
    )
    # Other fields leave settings alone.
    renamed = await _update(api, pb.Instance(name=inst.id, display_name="renamed"))
    assert renamed.display_name == "renamed" and list(renamed.sensitive_settings) == ["apiKey"]
    disabled = await _update(api, pb.Instance(name=inst.id, enabled=False), "enabled")
    assert not disabled.enabled
    await rpc_error(
        _update(api, pb.Instance(name=inst.id), "function"), INVALID, "INVALID_UPDATE_MASK"
    )


async def test_source_instances_webhook_url_and_links(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    source_fn = await api.create_function("src", type=pb.FUNCTION_TYPE_SOURCE, code=SOURCE_CODE)
    dest_fn = await api.create_function("dst")
    insert_fn = await api.create_function(
        "ins",
        type=pb.FUNCTION_TYPE_INSERT_DESTINATION,
        code="async function onTrack(event) { return event }",
    )
    source = await api.create_instance(source_fn.name, "source")
    base = running_server.service.settings.gateway.base_url()
    assert source.webhook_url == f"{base}/v1/sources/{source.id}"
    assert source.function_type == pb.FUNCTION_TYPE_SOURCE

    insert = await api.create_instance(insert_fn.name, "insert")
    dest = await api.create_instance(
        dest_fn.name, "dest", sources=[source.id], insert_instance=insert.name
    )
    assert list(dest.sources) == [source.name] and dest.insert_instance == insert.name
    got = await api.instances.GetInstance(
        spb.GetInstanceRequest(name=dest.id), metadata=api.metadata
    )
    assert list(got.sources) == [source.name]

    other_dest = await api.create_instance(dest_fn.name, "d2")
    for fields, reason in (
        ({"sources": [other_dest.id]}, "INVALID_LINK"),  # not a source instance
        ({"insert_instance": source.id}, "INVALID_LINK"),  # not an insert instance
    ):
        await rpc_error(api.create_instance(dest_fn.name, "bad", **fields), INVALID, reason)
    await rpc_error(
        api.create_instance(source_fn.name, "bad", sources=[source.id]), INVALID, "INVALID_LINK"
    )
    await rpc_error(
        api.create_instance(dest_fn.name, "bad", sources=["in_doesnotexist"]),
        grpc.StatusCode.NOT_FOUND,
    )

    # Deleting a source unlinks it from the destinations that listed it.
    assert (
        await api.instances.DeleteInstance(
            spb.DeleteInstanceRequest(name=source.name), metadata=api.metadata
        )
    ).status == "SUCCESS"
    after = await api.instances.GetInstance(
        spb.GetInstanceRequest(name=dest.id), metadata=api.metadata
    )
    assert list(after.sources) == []
    await rpc_error(
        api.instances.GetInstance(spb.GetInstanceRequest(name=source.id), metadata=api.metadata),
        grpc.StatusCode.NOT_FOUND,
        "INSTANCE_NOT_FOUND",
    )


async def test_webhook_auth_secret_is_revealed_only_to_platform_admins(
    running_server: RunningServer,
) -> None:
    api = Api.of(running_server)
    fn = await api.create_function("src", type=pb.FUNCTION_TYPE_SOURCE, code=SOURCE_CODE)
    auth = pb.WebhookAuth(mode=pb.WebhookAuth.MODE_HMAC_SHA256, secret=SECRET)
    inst = await api.create_instance(fn.name, webhook_auth=auth)
    assert inst.webhook_auth.has_secret and not inst.webhook_auth.secret
    assert inst.webhook_auth.mode == pb.WebhookAuth.MODE_HMAC_SHA256
    revealed = await api.instances.GetInstance(
        spb.GetInstanceRequest(name=inst.id, reveal_webhook_secret=True), metadata=api.metadata
    )
    assert revealed.webhook_auth.secret == SECRET
    files = sorted(running_server.data_dir.glob("registry.db*"))
    assert all(SECRET.encode() not in path.read_bytes() for path in files)

    # An update without a secret keeps the stored one.
    header = pb.WebhookAuth(mode=pb.WebhookAuth.MODE_SHARED_SECRET, header="X-Key")
    changed = await _update(api, pb.Instance(name=inst.id, webhook_auth=header), "webhook_auth")
    assert changed.webhook_auth.has_secret and changed.webhook_auth.header == "X-Key"

    token = await api.workspaces.CreateToken(
        spb.CreateTokenRequest(role=pb.ROLE_ADMIN), metadata=api.metadata
    )
    workspace_admin = Api.of(running_server, token.secret)
    await rpc_error(
        workspace_admin.instances.GetInstance(
            spb.GetInstanceRequest(name=inst.id, reveal_webhook_secret=True),
            metadata=workspace_admin.metadata,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    dest = await api.create_function("dst")
    await rpc_error(api.create_instance(dest.name, webhook_auth=auth), INVALID, "INVALID_LINK")
    await rpc_error(
        api.create_instance(
            fn.name, webhook_auth=pb.WebhookAuth(mode=pb.WebhookAuth.MODE_HMAC_SHA256)
        ),
        INVALID,
        "WEBHOOK_SECRET_REQUIRED",
    )


async def test_list_filters_by_function_and_paginates(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    one = await api.create_function("one")
    two = await api.create_function("two")
    made = [await api.create_instance(one.name, f"i{i}") for i in range(3)]
    await api.create_instance(two.name, "other")
    ids: list[str] = []
    token = ""
    while True:
        page = await api.instances.ListInstances(
            spb.ListInstancesRequest(function=one.id, page_size=2, page_token=token),
            metadata=api.metadata,
        )
        assert page.total_size == 3
        ids += [i.id for i in page.instances]
        token = page.next_page_token
        if not token:
            break
    assert ids == [i.id for i in made]
    everything = await api.instances.ListInstances(
        spb.ListInstancesRequest(), metadata=api.metadata
    )
    assert everything.total_size == 4
    again = await api.create_instance(one.name, "dup", request_id="r1")
    assert (await api.create_instance(one.name, "dup", request_id="r1")).id == again.id


async def test_create_honours_enabled_and_defaults_to_enabled(
    running_server: RunningServer,
) -> None:
    api = Api.of(running_server)
    fn = await api.create_function("toggle")
    assert (await api.create_instance(fn.name, "default")).enabled
    assert (await api.create_instance(fn.name, "on", enabled=True)).enabled
    off = await api.create_instance(fn.name, "off", enabled=False)
    assert not off.enabled
    fetched = await api.instances.GetInstance(
        spb.GetInstanceRequest(name=off.name), metadata=api.metadata
    )
    assert not fetched.enabled


async def test_revealed_settings_are_reused_until_the_instance_changes(
    running_server: RunningServer,
) -> None:
    """The dispatcher keeps an instance's decrypted settings while its record is unchanged;
    an update (a new record) is seen by the next invocation."""
    api = Api.of(running_server)
    fn = await api.create_function(code=ECHO_SETTINGS, schema=SCHEMA[:2])
    await api.deploy(fn.name)
    first = {"apiKey": SECRET, "region": "eu"}
    inst = await api.create_instance(fn.name, settings=orjson.dumps(first))
    for _ in range(3):
        assert await _settings_seen(api, inst.id) == first
    rotated = b'{"apiKey": "rotated", "region": "eu"}'
    await _update(api, pb.Instance(name=inst.id, settings=rotated), "settings")
    for _ in range(2):
        assert await _settings_seen(api, inst.id) == {"apiKey": "rotated", "region": "eu"}
