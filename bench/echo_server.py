"""The gRPC floor: a bare grpc.aio FunctionService whose InvokeFunction echoes the event.

Run as ``python -m bench.echo_server``; it prints ``port N`` once it listens on 127.0.0.1.
It parses the request and builds the response like any servicer would, and does nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import grpc
from fnbox.functions.v1 import invocation_pb2, service_pb2_grpc


class EchoServicer(service_pb2_grpc.FunctionServiceServicer):
    """Answers InvokeFunction with an OK result that carries the request's event back."""

    async def InvokeFunction(
        self,
        request: invocation_pb2.InvokeFunctionRequest,
        context: grpc.aio.ServicerContext[
            invocation_pb2.InvokeFunctionRequest, invocation_pb2.InvocationResult
        ],
    ) -> invocation_pb2.InvocationResult:
        return invocation_pb2.InvocationResult(
            outcome=invocation_pb2.OUTCOME_OK, returned=request.event
        )


async def serve(port: int) -> None:
    """Serve until cancelled, announcing the bound port on stdout."""
    server = grpc.aio.server()
    service_pb2_grpc.add_FunctionServiceServicer_to_server(EchoServicer(), server)  # type: ignore[no-untyped-call]
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    sys.stdout.write(f"port {bound}\n")
    sys.stdout.flush()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
