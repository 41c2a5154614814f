"""InvokeFunction and RunFunction: targets, input kinds, outcomes, versions, nothing stored."""

from __future__ import annotations

import grpc
import orjson
from fnbox.functions.v1 import invocation_pb2 as ipb
from fnbox.functions.v1 import resources_pb2 as pb
from fnbox.functions.v1 import service_pb2 as spb
from google.protobuf import field_mask_pb2

from tests.conftest import RunningServer, ServerFactory
from tests.server.helpers import SOURCE_CODE, Api, rpc_error, rpc_failure

INVALID = grpc.StatusCode.INVALID_ARGUMENT
EVENT = b'{"type":"track","event":"clicked","userId":"u1"}'
VERSIONED = "async function onTrack(event) { console.log('v{n}') }"


def _code(n: int) -> str:
    return VERSIONED.replace("{n}", str(n))


async def _invoke(api: Api, target: str, **fields: object) -> ipb.InvocationResult:
    request = ipb.InvokeFunctionRequest(target=target, **fields)  # type: ignore[arg-type]
    result: ipb.InvocationResult = await api.functions.InvokeFunction(
        request, metadata=api.metadata
    )
    return result


async def test_user_exceptions_are_results_not_rpc_errors(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    code = """
    async function onTrack(event) { throw new Error('boom ' + event.event) }
    async function onIdentify(event) { throw new RetryError('later') }
    """
    fn = await api.create_function(code=code)
    failed = await _invoke(api, fn.id, event=EVENT)
    assert failed.outcome == ipb.OUTCOME_ERROR
    assert (failed.error.name, failed.error.message) == ("Error", "boom clicked")
    assert failed.version == f"{fn.name}/versions/1" and failed.duration_ms > 0
    retry = await _invoke(api, fn.id, event=b'{"type":"identify","userId":"u"}')
    assert retry.outcome == ipb.OUTCOME_RETRY and retry.error.message == "later"
    unsupported = await _invoke(api, fn.id, event=b'{"type":"page","userId":"u"}')
    assert unsupported.outcome == ipb.OUTCOME_EVENT_NOT_SUPPORTED


async def test_source_function_takes_a_webhook(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    fn = await api.create_function("src", type=pb.FUNCTION_TYPE_SOURCE, code=SOURCE_CODE)
    request = ipb.WebhookRequest(
        method="POST",
        url="https://example.com/hook?x=1",
        headers={"content-type": "application/json"},
        body=b'{"name": "Signed Up"}',
    )
    result = await _invoke(api, fn.name, request=request)
    assert result.outcome == ipb.OUTCOME_OK, result
    assert [orjson.loads(e)["event"] for e in result.events] == ["Signed Up"]


async def test_input_must_match_the_function_type(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    source = await api.create_function("src", type=pb.FUNCTION_TYPE_SOURCE, code=SOURCE_CODE)
    dest = await api.create_function("dst")
    webhook = ipb.WebhookRequest(method="POST", url="https://x/", body=b"{}")
    cases: list[tuple[str, dict[str, object], str]] = [
        (dest.id, {"request": webhook}, "WRONG_INPUT_KIND"),
        (source.id, {"event": EVENT}, "WRONG_INPUT_KIND"),
        (source.id, {"events": b"[]"}, "WRONG_INPUT_KIND"),
        (dest.id, {}, "INPUT_REQUIRED"),
        (dest.id, {"event": b"[1]"}, "INVALID_EVENT"),
        (dest.id, {"events": b'{"type":"track"}'}, "INVALID_EVENT"),
        (dest.id, {"event": EVENT, "settings": b"[]"}, "INVALID_SETTINGS"),
        (dest.id, {"event": EVENT, "version": 1}, "VERSION_NOT_ALLOWED"),
        ("nope", {"event": EVENT}, "INVALID_NAME"),
    ]
    for target, fields, reason in cases:
        await rpc_error(_invoke(api, target, **fields), INVALID, reason)
    # Payload bytes are not decoded here: a broken event reaches the worker, which says so.
    broken = await _invoke(api, dest.id, event=b'{"type": "track", oops}')
    assert broken.outcome == ipb.OUTCOME_INVALID_EVENT_PAYLOAD
    batch = await _invoke(api, dest.id, events=b"[" + EVENT + b"," + EVENT + b"]")
    assert batch.outcome == ipb.OUTCOME_OK and len(batch.batch_statuses) == 2


async def test_targets_run_the_right_version(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    fn = await api.create_function(code=_code(1))
    instance = await api.create_instance(fn.name)
    # Never deployed: the function runs its latest version, its instances do not run.
    assert (await _invoke(api, fn.id, event=EVENT)).logs == ["v1"]
    await rpc_error(
        _invoke(api, instance.id, event=EVENT),
        grpc.StatusCode.FAILED_PRECONDITION,
        "FUNCTION_NOT_DEPLOYED",
    )
    await api.deploy(fn.name)
    await api.functions.UpdateFunction(
        spb.UpdateFunctionRequest(function=pb.Function(name=fn.name, code=_code(2))),
        metadata=api.metadata,
    )
    # Saved, not deployed: instance and function keep running v1; the version runs v2.
    on_instance = await _invoke(api, instance.name, event=EVENT)
    assert on_instance.logs == ["v1"] and on_instance.version == f"{fn.name}/versions/1"
    assert (await _invoke(api, fn.id, event=EVENT)).logs == ["v1"]
    assert (await _invoke(api, f"{fn.name}/versions/2", event=EVENT)).logs == ["v2"]
    assert (await _invoke(api, f"{fn.id}/versions/2", event=EVENT)).logs == ["v2"]
    # A replay may pick the version an instance runs.
    assert (await _invoke(api, instance.id, event=EVENT, version=2)).logs == ["v2"]
    await rpc_error(
        _invoke(api, instance.id, event=EVENT, version=9),
        grpc.StatusCode.NOT_FOUND,
        "VERSION_NOT_FOUND",
    )
    await rpc_error(
        _invoke(api, f"{fn.name}/versions/9", event=EVENT),
        grpc.StatusCode.NOT_FOUND,
        "VERSION_NOT_FOUND",
    )
    await api.deploy(fn.name)
    assert (await _invoke(api, instance.id, event=EVENT)).logs == ["v2"]

    await rpc_error(
        _invoke(api, instance.id, event=EVENT, settings=b"{}"), INVALID, "SETTINGS_NOT_ALLOWED"
    )
    await api.instances.UpdateInstance(
        spb.UpdateInstanceRequest(
            instance=pb.Instance(name=instance.name, enabled=False),
            update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
        ),
        metadata=api.metadata,
    )
    await rpc_error(
        _invoke(api, instance.id, event=EVENT),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSTANCE_DISABLED",
    )


async def test_a_target_just_resolved_for_one_caller_is_not_anothers(
    running_server: RunningServer,
) -> None:
    """The dispatcher reuses what a target name resolved to only for the same caller: another
    workspace naming the same function or instance right after the owner is NOT_FOUND; the
    owner's next calls, and a request id, settings or version, still resolve as usual."""
    owner = Api.of(running_server)
    fn = await owner.create_function(code=_code(1))
    await owner.deploy(fn.name)
    instance = await owner.create_instance(fn.name)
    created = await owner.workspaces.CreateWorkspace(
        spb.CreateWorkspaceRequest(display_name="Other"), metadata=owner.metadata
    )
    other = Api.of(running_server, created.admin_token.secret)
    for target in (fn.id, fn.name, instance.id, instance.name):
        for _ in range(2):
            result = await _invoke(owner, target, event=EVENT)
            assert result.logs == ["v1"] and result.version == f"{fn.name}/versions/1"
        await rpc_error(_invoke(other, target, event=EVENT), grpc.StatusCode.NOT_FOUND)
        assert (await _invoke(owner, target, event=EVENT, request_id="r1")).logs == ["v1"]
    await rpc_error(
        _invoke(owner, instance.id, event=EVENT, settings=b"{}"), INVALID, "SETTINGS_NOT_ALLOWED"
    )
    await rpc_error(_invoke(owner, fn.id, event=EVENT, version=1), INVALID, "VERSION_NOT_ALLOWED")


async def test_function_targets_take_settings(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    fn = await api.create_function(
        code="async function onTrack(event, settings) { console.log(settings.greeting) }"
    )
    result = await _invoke(api, fn.id, event=EVENT, settings=b'{"greeting": "hello"}')
    assert result.logs == ["hello"]


async def test_run_stores_nothing_and_reuses_workers_per_code(
    running_server: RunningServer,
) -> None:
    api = Api.of(running_server)
    pool = running_server.service.pool

    async def run(code: str, **fields: object) -> ipb.InvocationResult:
        request = ipb.RunFunctionRequest(
            type=pb.FUNCTION_TYPE_DESTINATION,
            code=code,
            **fields,  # type: ignore[arg-type]
        )
        result: ipb.InvocationResult = await api.functions.RunFunction(
            request, metadata=api.metadata
        )
        return result

    def run_keys() -> set[str]:
        return {key for key in pool.stats().by_key if key.startswith("run:")}

    first = await run(_code(1), event=EVENT)
    assert first.outcome == ipb.OUTCOME_OK and first.logs == ["v1"] and first.version == ""
    assert len(run_keys()) == 1
    again = await run(_code(1), event=EVENT, settings=b'{"a": "b"}')
    assert again.logs == ["v1"] and len(run_keys()) == 1
    other = await run(_code(2), event=EVENT)
    assert other.logs == ["v2"] and len(run_keys()) == 2
    listed = await api.functions.ListFunctions(spb.ListFunctionsRequest(), metadata=api.metadata)
    assert listed.total_size == 0

    # Code that does not compile cannot run: INVALID_ARGUMENT naming line and column.
    await rpc_error(run("async function onTrack( {", event=EVENT), INVALID, "SYNTAX_ERROR")
    await rpc_error(
        api.functions.RunFunction(
            ipb.RunFunctionRequest(code=_code(1), event=EVENT), metadata=api.metadata
        ),
        INVALID,
        "TYPE_REQUIRED",
    )
    await rpc_error(run(_code(1), request=ipb.WebhookRequest(url="https://x/")), INVALID)
    await rpc_error(
        run(_code(1), event=EVENT, limits=pb.FunctionLimits(memory_mib=10**6)),
        INVALID,
        "INVALID_LIMITS",
    )


async def test_payload_over_the_frame_cap_is_invalid(server_factory: ServerFactory) -> None:
    server = await server_factory(executor={"max_frame_bytes": 64 * 1024})
    api = Api.of(server)
    fn = await api.create_function()
    big = b'{"type":"track","pad":"' + b"x" * (100 * 1024) + b'"}'
    await rpc_error(_invoke(api, fn.id, event=big), INVALID, "PAYLOAD_TOO_LARGE")
    assert (await _invoke(api, fn.id, event=EVENT)).outcome == ipb.OUTCOME_OK


async def test_a_dying_worker_is_unavailable_and_a_hang_is_a_timeout(
    running_server: RunningServer,
) -> None:
    api = Api.of(running_server)
    bomb = await api.create_function(
        "bomb",
        code="async function onTrack() { const a = []; for (;;) a.push(new Array(1e6).fill(1)) }",
    )
    info, message = await rpc_failure(
        _invoke(api, bomb.id, event=EVENT), grpc.StatusCode.UNAVAILABLE, "WORKER_CRASHED"
    )
    # V8's heap limit, said as such (not its native stack trace); the same input would do it
    # again, so not retryable.
    assert info.metadata["cause"] == "heap_limit" and info.metadata["retryable"] == "false"
    assert message.startswith("the function ran out of memory") and "0x" not in message
    hang = await api.create_function(
        "hang",
        code="async function onTrack() { for (;;) {} }",
    )
    await api.functions.UpdateFunction(
        spb.UpdateFunctionRequest(
            function=pb.Function(name=hang.id, limits=pb.FunctionLimits(timeout_ms=300)),
            update_mask=field_mask_pb2.FieldMask(paths=["limits"]),
        ),
        metadata=api.metadata,
    )
    result = await _invoke(api, hang.id, event=EVENT)
    assert result.outcome == ipb.OUTCOME_TIMEOUT
