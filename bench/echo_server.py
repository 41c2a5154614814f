"""The gRPC floor: a bare grpc.aio FunctionService whose InvokeFunction echoes the event.

Run as ``python -m bench.echo_server [--executor]``; it prints ``port N`` once it listens on
127.0.0.1. It parses the request and builds the response like any servicer would, and does
nothing else. With ``--executor`` it also runs the event through one warm fnbox worker (the
trivial destination) before answering: the floor of any design that makes one stdio round
trip to a Node process per call, without fnbox's auth, registry, telemetry or conversions.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import grpc
from fnbox.executor import (
    ExecutorSettings,
    FunctionSpec,
    FunctionType,
    Invocation,
    WorkerPool,
)
from fnbox.functions.v1 import invocation_pb2, service_pb2_grpc

from bench.payloads import TRIVIAL_DESTINATION


class EchoServicer(service_pb2_grpc.FunctionServiceServicer):
    """Answers InvokeFunction with an OK result that carries the request's event back."""

    def __init__(self, pool: WorkerPool | None = None) -> None:
        self._pool = pool
        self._spec = FunctionSpec(
            key="bench-floor", type=FunctionType.DESTINATION, code=TRIVIAL_DESTINATION
        )

    async def InvokeFunction(
        self,
        request: invocation_pb2.InvokeFunctionRequest,
        context: grpc.aio.ServicerContext[
            invocation_pb2.InvokeFunctionRequest, invocation_pb2.InvocationResult
        ],
    ) -> invocation_pb2.InvocationResult:
        if self._pool is not None:
            await self._pool.invoke(self._spec, Invocation(kind="event", payload=request.event))
        return invocation_pb2.InvocationResult(
            outcome=invocation_pb2.OUTCOME_OK, returned=request.event
        )


async def serve(port: int, with_executor: bool) -> None:
    """Serve until cancelled, announcing the bound port on stdout."""
    pool = None
    if with_executor:
        pool = WorkerPool(ExecutorSettings(warm_workers=1))
        await pool.start()
    server = grpc.aio.server()
    servicer = EchoServicer(pool)
    service_pb2_grpc.add_FunctionServiceServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    sys.stdout.write(f"port {bound}\n")
    sys.stdout.flush()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--executor", action="store_true", help="one worker round trip per call")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port, args.executor))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
