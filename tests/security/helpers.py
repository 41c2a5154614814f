"""Helpers of the security suite: the API calls, benign traffic served alongside every attack,
and loopback listeners that count the connections they receive."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import orjson
from fnbox.functions.v1 import invocation_pb2 as ipb
from fnbox.functions.v1 import resources_pb2 as pb
from fnbox.functions.v1 import service_pb2 as spb
from fnbox.functions.v1 import service_pb2_grpc
from fnbox.server.app import ControlService
from fnbox.server.settings import load_settings
from google.rpc import error_details_pb2
from grpc_status import rpc_status

T = TypeVar("T")
SOURCE = pb.FUNCTION_TYPE_SOURCE
DESTINATION = pb.FUNCTION_TYPE_DESTINATION
INSERT = pb.FUNCTION_TYPE_INSERT_DESTINATION
TRACK = orjson.dumps({"type": "track", "event": "Attack", "userId": "u1", "properties": {}})
_unique = itertools.count(1)

# A benign function with module state and console output: every reply is checked in full, so
# a leak from an attacker (a log line, a polluted prototype, a lost worker) fails the test.
BENIGN_CODE = """
let calls = 0;
async function onTrack(event, settings) {
  calls += 1;
  if (typeof process !== 'undefined' || typeof require !== 'undefined') throw new Error('host');
  if (({}).polluted !== undefined || [].polluted !== undefined) throw new Error('polluted');
  if (globalThis.secret !== undefined) throw new Error('foreign global');
  console.log('benign ' + event.properties.n);
  event.properties.double = event.properties.n * 2;
  return event;
}
"""


def outcome(result: ipb.InvocationResult) -> str:
    return ipb.Outcome.Name(result.outcome).removeprefix("OUTCOME_")


def error_reason(error: grpc.aio.AioRpcError) -> str:
    """The google.rpc.ErrorInfo reason of a failed call ('' when there is none)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status is not None else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


@dataclass
class Server:
    """One control service (real store, real worker pool) and a client for its API."""

    service: ControlService
    channel: grpc.aio.Channel
    metadata: tuple[tuple[str, str], ...]
    functions: Any
    benign_name: str = ""

    @classmethod
    async def start(cls, data_dir: Path, **executor: Any) -> Server:
        settings = load_settings(
            data_dir=data_dir, grpc={"listen": "127.0.0.1:0"}, executor=executor
        )
        service = ControlService(settings)
        await service.start()
        channel = grpc.aio.insecure_channel(service.address)
        token = (data_dir / "admin.token").read_text().strip()
        stub = service_pb2_grpc.FunctionServiceStub(channel)
        server = cls(service, channel, (("authorization", f"Bearer {token}"),), stub)
        server.benign_name = (await server.create(BENIGN_CODE, type=INSERT, name="benign")).name
        return server

    async def stop(self) -> None:
        await self.channel.close(None)
        await self.service.stop()

    async def run(
        self,
        code: str,
        *,
        type: pb.FunctionType = DESTINATION,
        event: bytes = TRACK,
        request: ipb.WebhookRequest | None = None,
        timeout_ms: int = 0,
        memory_mib: int = 0,
        no_network: bool = False,
        settings: dict[str, Any] | None = None,
    ) -> ipb.InvocationResult:
        """RunFunction: unsaved code (each distinct code gets its own workers)."""
        limits = pb.FunctionLimits(
            timeout_ms=timeout_ms, memory_mib=memory_mib, no_network=no_network
        )
        req = ipb.RunFunctionRequest(
            type=type, code=code, limits=limits, settings=orjson.dumps(settings or {})
        )
        if type == SOURCE:
            req.request.CopyFrom(
                request or ipb.WebhookRequest(method="POST", url="https://in/", body=b"{}")
            )
        else:
            req.event = event
        result: ipb.InvocationResult = await self.functions.RunFunction(req, metadata=self.metadata)
        return result

    async def create(
        self,
        code: str,
        *,
        type: pb.FunctionType = DESTINATION,
        name: str = "",
        limits: pb.FunctionLimits | None = None,
        deploy: bool = True,
    ) -> pb.Function:
        function = pb.Function(
            display_name=name or f"fn{next(_unique)}", type=type, code=code, limits=limits
        )
        created: pb.Function = await self.functions.CreateFunction(
            spb.CreateFunctionRequest(function=function), metadata=self.metadata
        )
        if deploy:
            created = await self.functions.DeployFunction(
                spb.DeployFunctionRequest(name=created.name), metadata=self.metadata
            )
        return created

    async def invoke(
        self, target: str, event: bytes = TRACK, settings: dict[str, Any] | None = None
    ) -> ipb.InvocationResult:
        request = ipb.InvokeFunctionRequest(target=target, event=event)
        if settings is not None:
            request.settings = orjson.dumps(settings)
        result: ipb.InvocationResult = await self.functions.InvokeFunction(
            request, metadata=self.metadata
        )
        return result

    async def benign_call(self) -> None:
        """One call of the benign function; raises AssertionError on any deviation."""
        n = random.randrange(1_000_000)
        event = {"type": "track", "event": "Benign", "userId": "b", "properties": {"n": n}}
        result = await self.invoke(self.benign_name, orjson.dumps(event))
        assert outcome(result) == "OK", (outcome(result), result.error)
        assert list(result.logs) == [f"benign {n}"], list(result.logs)
        returned = orjson.loads(result.returned)
        assert returned["properties"] == {"n": n, "double": 2 * n}, returned

    @contextlib.asynccontextmanager
    async def benign_traffic(self, lanes: int = 2) -> AsyncIterator[BenignTraffic]:
        """Serve the benign function continuously (``lanes`` calls at a time) while the body
        runs, then a few more calls; any failed or wrong benign reply fails the test."""
        traffic = BenignTraffic()
        await self.benign_call()  # its worker is up before the attack starts
        tasks = [asyncio.create_task(traffic.lane(self)) for _ in range(lanes)]
        try:
            yield traffic
        finally:
            traffic.stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert not traffic.failures, traffic.failures[:3]
        for _ in range(2):
            await self.benign_call()
        traffic.ok += 2

    async def attack(self, call: Awaitable[T]) -> T:
        """Await ``call`` (an attack) while benign traffic is served; return its value."""
        async with self.benign_traffic():
            return await call

    async def attack_rpc_error(self, call: Awaitable[Any]) -> grpc.aio.AioRpcError:
        """Like ``attack``, for an attack that must end in an RPC error: return it."""
        async with self.benign_traffic():
            try:
                await call
            except grpc.aio.AioRpcError as error:
                return error
        raise AssertionError("the attack did not fail with an RPC error")


@dataclass
class BenignTraffic:
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def lane(self, server: Server) -> None:
        while not self.stop.is_set():
            try:
                await server.benign_call()
                self.ok += 1
            except (AssertionError, grpc.aio.AioRpcError) as exc:
                self.failures.append(repr(exc))
            await asyncio.sleep(0.01)  # leave the cores to the attack


class Listener:
    """TCP listeners on loopback addresses (one port) that count every connection."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._servers: list[asyncio.base_events.Server] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    @classmethod
    async def open(cls, hosts: tuple[str, ...] = ("127.0.0.1", "::1")) -> Listener:
        listener = cls()
        for host in hosts:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            server = await asyncio.start_server(
                listener._handle, host, listener.port, family=family
            )
            listener.port = server.sockets[0].getsockname()[1]
            listener._servers.append(server)
        return listener

    async def close(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()


async def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll ``check`` until it holds (fails the test after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


class HttpStub:
    """A minimal HTTP/1.1 responder on one loopback address, for egress tests. Paths:
    ``/ok`` → 200 "ok"; ``/redirect?to=URL`` → 302 to URL; ``/hang`` → never answers.
    It never connects anywhere itself. ``requests`` lists the request lines it received."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._hung: list[asyncio.StreamWriter] = []

    @classmethod
    async def open(cls, host: str) -> HttpStub:
        stub = cls()
        stub._server = await asyncio.start_server(stub._handle, host, 0)
        stub.port = stub._server.sockets[0].getsockname()[1]
        return stub

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        line = head.split(b"\r\n", 1)[0].decode()
        self.requests.append(line)
        target = line.split(" ")[1]
        if "/hang" in target:
            self._hung.append(writer)
            return
        if "/redirect?to=" in target:
            location = target.split("/redirect?to=", 1)[1]
            status, extra, body = "302 Found", f"location: {location}\r\n", b""
        else:
            status, extra, body = "200 OK", "", b"ok"
        writer.write(
            f"HTTP/1.1 {status}\r\n{extra}content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def close(self) -> None:
        for writer in self._hung:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def worker_netns() -> dict[int, str]:
    """pid → network namespace of every Node worker started by this process."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid != os.getpid() or b"worker.js" not in (entry / "cmdline").read_bytes():
                continue
            found[int(entry.name)] = os.readlink(entry / "ns" / "net")
        except (OSError, ValueError, IndexError):
            continue
    return found


def own_netns() -> str:
    return os.readlink("/proc/self/ns/net")
