"""unary: warm InvokeFunction of a trivial destination, 1/8/32 callers, vs a bare echo."""

from __future__ import annotations

from fnbox.functions.v1 import invocation_pb2

from bench.config import BenchConfig
from bench.fnbox_api import INVOKE_METHOD, FnboxServer
from bench.loadgen import LoadGenerator, LoadResult, LoadSpec
from bench.payloads import EVENT, TRIVIAL_DESTINATION
from bench.scenarios.common import Section, summarise_load
from bench.servers import EchoServer

CONCURRENCY = (1, 8, 32)


def _check_echo(echo: EchoServer) -> None:
    import grpc

    with grpc.insecure_channel(echo.target) as channel:
        reply = channel.unary_unary(INVOKE_METHOD, None, None)(
            invocation_pb2.InvokeFunctionRequest(target="x", event=EVENT).SerializeToString()
        )
    result = invocation_pb2.InvocationResult.FromString(reply)
    if result.outcome != invocation_pb2.OUTCOME_OK or result.returned != EVENT:
        raise RuntimeError(f"echo server answered {result}")


def prepare_fnbox(fnbox: FnboxServer) -> bytes:
    """Deploy the trivial destination, invoke it once (warm) and return the request bytes."""
    name = fnbox.api.create_function("bench-unary", TRIVIAL_DESTINATION)
    request = invocation_pb2.InvokeFunctionRequest(target=name, event=EVENT)
    result = fnbox.api.invoke(request)
    if result.outcome != invocation_pb2.OUTCOME_OK:
        raise RuntimeError(f"warm-up invocation answered {result}")
    return bytes(request.SerializeToString())


def run(
    config: BenchConfig,
    loadgen: LoadGenerator,
    echo: EchoServer,
    fnbox: FnboxServer | None,
    floor: EchoServer | None = None,
) -> tuple[Section, Section, Section]:
    """Returns (the ``unary`` section or {}, the echo baseline's figures, the gRPC+worker
    floor's figures or {})."""
    _check_echo(echo)
    if floor:
        _check_echo(floor)
    echo_request = invocation_pb2.InvokeFunctionRequest(target="x", event=EVENT)
    echo_bytes = echo_request.SerializeToString()
    fnbox_bytes = prepare_fnbox(fnbox) if fnbox else b""
    echo_runs: dict[int, list[LoadResult]] = {c: [] for c in CONCURRENCY}
    fnbox_runs: dict[int, list[LoadResult]] = {c: [] for c in CONCURRENCY}
    floor_runs: dict[int, list[LoadResult]] = {c: [] for c in CONCURRENCY}
    for _ in range(config.repeats):
        for concurrency in CONCURRENCY:
            for server, runs in ((echo, echo_runs), (floor, floor_runs)):
                if server is None:
                    continue
                spec = LoadSpec(
                    target=server.target,
                    method=INVOKE_METHOD,
                    request=echo_bytes,
                    concurrency=concurrency,
                    duration_s=config.duration_s,
                    warmup_s=config.warmup_s,
                )
                runs[concurrency].append(loadgen.run(spec, server_pid=server.pid))
            if fnbox:
                spec = LoadSpec(
                    target=fnbox.grpc_target,
                    method=INVOKE_METHOD,
                    request=fnbox_bytes,
                    concurrency=concurrency,
                    duration_s=config.duration_s,
                    warmup_s=config.warmup_s,
                    metadata=fnbox.api.metadata,
                )
                fnbox_runs[concurrency].append(loadgen.run(spec, server_pid=fnbox.pid))
    echo_section = {f"c{c}": summarise_load(runs) for c, runs in echo_runs.items()}
    unary = {f"c{c}": summarise_load(runs) for c, runs in fnbox_runs.items()} if fnbox else {}
    floor_section = (
        {f"c{c}": summarise_load(runs) for c, runs in floor_runs.items()} if floor else {}
    )
    return unary, echo_section, floor_section
