"""map_rpc_errors on real AioRpcErrors from a real grpc.aio server."""

from __future__ import annotations

import socket

import grpc
import pytest
from fnbox.client import (
    NO_RETRY,
    FnboxClient,
    FnboxError,
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    RPCError,
    Unauthenticated,
    Unavailable,
    error_from_status,
)
from fnbox.functions.v1 import service_pb2, service_pb2_grpc
from google.rpc import code_pb2

from tests.client.conftest import Scripted
from tests.client.scripted_server import rich_status


async def test_bearer_token_is_sent(client: FnboxClient) -> None:
    function = await client.functions.get("fn_ok")
    assert function.display_name == "Bearer good-token"


async def test_not_found_carries_error_info(client: FnboxClient) -> None:
    with pytest.raises(NotFound) as caught:
        await client.functions.get("missing")
    error = caught.value
    assert error.code is grpc.StatusCode.NOT_FOUND
    assert error.reason == "FUNCTION_NOT_FOUND"
    assert error.domain == "fnbox.dev"
    assert error.metadata == {"resource": "missing"}
    assert str(error) == "function 'missing' not found"
    assert isinstance(error.__cause__, grpc.aio.AioRpcError)
    assert isinstance(error, FnboxError) and not error.retryable


async def test_syntax_error_has_line_column_and_field_violations(client: FnboxClient) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await client.functions.get("bad-code")
    error = caught.value
    assert (error.line, error.column) == (3, 7)
    assert error.reason == "SYNTAX_ERROR"
    assert [(v.field, v.description) for v in error.field_violations] == [
        ("function.code", "Unexpected token")
    ]


async def test_status_without_details_maps_by_code(client: FnboxClient) -> None:
    with pytest.raises(Internal) as caught:
        await client.functions.get("plain")
    assert caught.value.reason == "" and caught.value.metadata == {}
    assert caught.value.message == "plain failure"


async def test_bad_token_is_unauthenticated(scripted: Scripted) -> None:
    async with FnboxClient(scripted.target, "wrong") as client:
        with pytest.raises(Unauthenticated) as caught:
            await client.functions.get("fn_ok")
    assert caught.value.reason == "BAD_TOKEN"


async def test_unmapped_code_is_the_base_rpc_error(client: FnboxClient) -> None:
    # The scripted server registers FunctionService only: workspaces are UNIMPLEMENTED.
    with pytest.raises(RPCError) as caught:
        await client.workspaces.get()
    assert type(caught.value) is RPCError
    assert caught.value.code is grpc.StatusCode.UNIMPLEMENTED


async def test_idempotent_call_is_retried_until_it_succeeds(
    client: FnboxClient, scripted: Scripted
) -> None:
    function = await client.functions.get("flaky-2")
    assert function.name == "flaky-2"
    assert scripted.servicer.calls["flaky-2"] == 3


async def test_retries_stop_after_max_attempts(client: FnboxClient, scripted: Scripted) -> None:
    with pytest.raises(ResourceExhausted) as caught:
        await client.functions.get("busy")
    assert caught.value.retryable
    assert scripted.servicer.calls["busy"] == 4


async def test_a_status_the_server_calls_not_retryable_is_not_retried(
    client: FnboxClient, scripted: Scripted
) -> None:
    with pytest.raises(Unavailable) as caught:
        await client.functions.get("oom")
    assert not caught.value.retryable and caught.value.metadata["cause"] == "heap_limit"
    assert scripted.servicer.calls["oom"] == 1


async def test_non_idempotent_call_is_not_retried(client: FnboxClient, scripted: Scripted) -> None:
    with pytest.raises(Unavailable):
        await client.functions.update("flaky-1", code="x")
    assert scripted.servicer.calls["flaky-1"] == 1


async def test_retries_can_be_disabled(scripted: Scripted) -> None:
    async with FnboxClient(scripted.target, "good-token", retry=NO_RETRY) as client:
        with pytest.raises(Unavailable):
            await client.functions.get("flaky-1")
    assert scripted.servicer.calls["flaky-1"] == 1


async def test_unreachable_server_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with FnboxClient(f"127.0.0.1:{port}", "t", retry=NO_RETRY) as client:
        with pytest.raises(Unavailable) as caught:
            await client.functions.get("fn_x")
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE


async def test_error_from_status_matches_the_rpc_mapping(scripted: Scripted) -> None:
    status = rich_status(
        code_pb2.INVALID_ARGUMENT,
        "syntax error",
        reason="SYNTAX_ERROR",
        metadata={"line": "1", "column": "2"},
    )
    error = error_from_status(status)
    assert isinstance(error, InvalidArgument)
    assert (error.line, error.column, error.reason) == (1, 2, "SYNTAX_ERROR")
    assert type(error_from_status(rich_status(99, "?", reason="X"))) is Internal


async def test_raw_stub_error_maps_the_same_way(scripted: Scripted) -> None:
    from fnbox.client import map_rpc_errors

    async with grpc.aio.insecure_channel(scripted.target) as channel:
        stub = service_pb2_grpc.FunctionServiceStub(channel)
        with pytest.raises(NotFound), map_rpc_errors():
            await stub.GetFunction(
                service_pb2.GetFunctionRequest(name="missing"),
                metadata=(("authorization", "Bearer good-token"),),
            )
