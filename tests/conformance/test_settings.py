"""SEGMENT-SPEC §5 (settings and secrets) and §8.12.

SPEC → tests
- §5 / §8.12 settings.apiKey equals the instance's configured value [doc]
  → test_instance_setting_reaches_the_handler
- §5 / §8.12 two instances of the same code see different settings [doc]
  → test_two_instances_of_the_same_code_see_different_settings
- §5 / §8.12 a missing required setting blocks save/connect [doc]
  → test_missing_required_setting_blocks_connect
- §5 a setting has name, label, description, type, required, sensitive [API model]
  → test_setting_definition_keeps_all_six_fields
- §5 the setting name is a camelCase identifier (Segment derives it from the label; fnbox
  takes it as given and checks it) → test_setting_name_must_be_a_camel_case_identifier
- §5 types STRING, BOOLEAN, ARRAY (string array), TEXT_MAP (string→string) [API]
  → test_setting_types_reach_the_handler_as_json_values
- §5 a value of the wrong type is rejected [API types] → test_setting_value_of_wrong_type_is_rejected
- §5 sensitive settings are hidden and encrypted, yet reach the function [doc]
  → test_sensitive_setting_is_hidden_but_reaches_the_function
- §5 settings is the 2nd argument of every call (onRequest, single handlers, onBatch) [doc]
  → test_settings_are_the_second_argument_of_every_handler
- §5 editor Test has its own setting values [doc] → test_run_takes_its_own_setting_values
- §5 updating an instance's settings takes effect for that instance [doc: values per instance]
  → test_updated_instance_settings_are_used_by_the_next_invocation
- §6 module globals live as long as the warm worker (shared across invocations) [doc+boreal]
  → test_module_globals_persist_between_invocations
"""

# ruff: noqa: E501  (embedded JavaScript and the SPEC map read better unwrapped)

from __future__ import annotations

import orjson
import pytest
from fnbox.client import InvalidArgument

from tests.conformance.harness import (
    DESTINATION,
    OK,
    SOURCE,
    Conformance,
    describe,
    event,
    events,
    pb,
    request,
    setting,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

PRINT_API_KEY = "async function onTrack(event, settings) { console.log(settings.apiKey) }"


async def test_instance_setting_reaches_the_handler(conformance: Conformance) -> None:
    fn = await conformance.deployed(
        DESTINATION, PRINT_API_KEY, schema=[setting("apiKey", required=True)]
    )
    instance = await conformance.instance(fn.name, {"apiKey": "key-123"})
    result = await conformance.invoke(instance.name, event=event())
    assert list(result.logs) == ["key-123"], describe(result)


async def test_two_instances_of_the_same_code_see_different_settings(
    conformance: Conformance,
) -> None:
    fn = await conformance.deployed(DESTINATION, PRINT_API_KEY, schema=[setting("apiKey")])
    first = await conformance.instance(fn.name, {"apiKey": "first"}, name="one")
    second = await conformance.instance(fn.name, {"apiKey": "second"}, name="two")
    seen = []
    for instance in (first, second, first):
        result = await conformance.invoke(instance.id, event=event())
        seen += list(result.logs)
    assert seen == ["first", "second", "first"]


async def test_missing_required_setting_blocks_connect(conformance: Conformance) -> None:
    fn = await conformance.deployed(
        DESTINATION, PRINT_API_KEY, schema=[setting("apiKey", required=True)]
    )
    for values in ({}, {"apiKey": ""}):
        with pytest.raises(InvalidArgument) as caught:
            await conformance.instance(fn.name, values)
        assert "apiKey" in str(caught.value)


async def test_setting_definition_keeps_all_six_fields(conformance: Conformance) -> None:
    definition = pb.SettingDefinition(
        name="apiKey",
        label="API Key",
        description="Your API key",
        type=pb.SETTING_TYPE_STRING,
        required=True,
        sensitive=True,
    )
    made = await conformance.client.functions.create(
        "six fields", DESTINATION, PRINT_API_KEY, settings_schema=[definition]
    )
    assert list(made.settings_schema) == [definition]


async def test_setting_name_must_be_a_camel_case_identifier(conformance: Conformance) -> None:
    for name in ("API Key", "ApiKey", "api-key"):
        with pytest.raises(InvalidArgument) as caught:
            await conformance.client.functions.create(
                "bad setting", DESTINATION, PRINT_API_KEY, settings_schema=[setting(name)]
            )
        assert caught.value.reason == "INVALID_SETTING_NAME"


async def test_setting_types_reach_the_handler_as_json_values(conformance: Conformance) -> None:
    schema = [
        setting("region", pb.SETTING_TYPE_STRING),
        setting("dryRun", pb.SETTING_TYPE_BOOLEAN),
        setting("tags", pb.SETTING_TYPE_ARRAY),
        setting("headers", pb.SETTING_TYPE_TEXT_MAP),
    ]
    code = "async function onTrack(event, s) { console.log(JSON.stringify([s.region, s.dryRun, s.tags, s.headers])) }"
    fn = await conformance.deployed(DESTINATION, code, schema=schema)
    values = {
        "region": "eu",
        "dryRun": False,
        "tags": ["a", "b"],
        "headers": {"X-Team": "data"},
    }
    instance = await conformance.instance(fn.name, values)
    result = await conformance.invoke(instance.name, event=event())
    assert [orjson.loads(line) for line in result.logs] == [
        ["eu", False, ["a", "b"], {"X-Team": "data"}]
    ], describe(result)


@pytest.mark.parametrize(
    ("type", "value"),
    [
        (pb.SETTING_TYPE_STRING, 12),
        (pb.SETTING_TYPE_BOOLEAN, "true"),
        (pb.SETTING_TYPE_ARRAY, ["a", 1]),
        (pb.SETTING_TYPE_TEXT_MAP, {"k": 1}),
    ],
)
async def test_setting_value_of_wrong_type_is_rejected(
    conformance: Conformance, type: int, value: object
) -> None:
    fn = await conformance.deployed(DESTINATION, PRINT_API_KEY, schema=[setting("value", type)])
    with pytest.raises(InvalidArgument) as caught:
        await conformance.instance(fn.name, {"value": value})
    assert caught.value.reason == "INVALID_SETTING_VALUE"


async def test_sensitive_setting_is_hidden_but_reaches_the_function(
    conformance: Conformance,
) -> None:
    schema = [setting("apiKey", sensitive=True), setting("region")]
    fn = await conformance.deployed(DESTINATION, PRINT_API_KEY, schema=schema)
    made = await conformance.instance(fn.name, {"apiKey": "s3cret-value", "region": "eu"})
    got = await conformance.client.instances.get(made.name)
    for shown in (made, got):
        assert b"s3cret-value" not in shown.SerializeToString()
        assert orjson.loads(shown.settings) == {"region": "eu"}
        assert list(shown.sensitive_settings) == ["apiKey"]
    result = await conformance.invoke(made.name, event=event())
    assert list(result.logs) == ["s3cret-value"], describe(result)


async def test_settings_are_the_second_argument_of_every_handler(
    conformance: Conformance,
) -> None:
    show = "console.log(settings.apiKey)"
    destination = f"""
    async function onTrack(event, settings) {{ {show} }}
    async function onBatch(events, settings) {{ {show} }}"""
    source = f"async function onRequest(request, settings) {{ {show} }}"
    given = {"apiKey": "k"}
    results = [
        await conformance.run(DESTINATION, destination, event=event(), settings=given),
        await conformance.run(
            DESTINATION, destination, events=events({"type": "track"}), settings=given
        ),
        await conformance.run(SOURCE, source, request=request({}), settings=given),
    ]
    assert [list(r.logs) for r in results] == [["k"]] * 3


async def test_run_takes_its_own_setting_values(conformance: Conformance) -> None:
    result = await conformance.run(
        DESTINATION, PRINT_API_KEY, event=event(), settings={"apiKey": "test-value"}
    )
    assert (result.outcome, list(result.logs)) == (OK, ["test-value"])


async def test_updated_instance_settings_are_used_by_the_next_invocation(
    conformance: Conformance,
) -> None:
    fn = await conformance.deployed(DESTINATION, PRINT_API_KEY, schema=[setting("apiKey")])
    instance = await conformance.instance(fn.name, {"apiKey": "before"})
    first = await conformance.invoke(instance.name, event=event())
    await conformance.client.instances.update(instance.name, settings={"apiKey": "after"})
    second = await conformance.invoke(instance.name, event=event())
    assert list(first.logs) + list(second.logs) == ["before", "after"]


async def test_module_globals_persist_between_invocations(conformance: Conformance) -> None:
    code = """
    let calls = 0
    async function onTrack(event) { calls += 1; console.log(calls) }"""
    fn = await conformance.deployed(DESTINATION, code)
    counts = [list((await conformance.invoke(fn.name, event=event())).logs) for _ in range(3)]
    assert counts == [["1"], ["2"], ["3"]]
