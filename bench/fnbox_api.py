"""Starting ``fnbox serve`` in a child process and driving it over plain generated stubs.

The bench uses the raw stubs (not the client library) so that the load generator's cost per
call is the same for fnbox and for the echo baseline.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from fnbox.functions.v1 import invocation_pb2, resources_pb2, service_pb2, service_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.servers import ServerProcess

INVOKE_METHOD = "/fnbox.functions.v1.FunctionService/InvokeFunction"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fnbox_available() -> str | None:
    """None when ``fnbox serve`` can run here, else why not."""
    for module in ("fnbox.server.main", "fnbox.cli.main"):
        try:
            found = importlib.util.find_spec(module)
        except ImportError as exc:
            return f"fnbox serve is not available yet ({exc})"
        if found is None:
            return f"fnbox serve is not available yet (no module {module})"
    return None


class FnboxServer:
    """``fnbox serve`` on a temporary data dir and free ports, with extra ``FNBOX_`` settings."""

    def __init__(self, base_env: dict[str, str], settings: dict[str, str], log_path: Path) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="fnbox-bench-")
        self.data_dir = Path(self._tmp.name)
        self.grpc_target = f"127.0.0.1:{free_port()}"
        self.http_base = f"http://127.0.0.1:{free_port()}"
        env = {k: v for k, v in base_env.items() if not k.startswith("FNBOX_")}
        env.update(settings)
        fnbox_cli = Path(sys.executable).with_name("fnbox")
        argv = [str(fnbox_cli), "serve", "--data-dir", str(self.data_dir)]
        argv += ["--grpc-listen", self.grpc_target, "--http-listen", self.http_base[7:]]
        self._proc = ServerProcess(argv, env=env, log_path=log_path)
        try:
            self.token = self._wait_ready(timeout_s=60)
        except BaseException:
            self.stop()
            raise
        self.api = FnboxApi(self.grpc_target, self.token)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _wait_ready(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        token_file = self.data_dir / "admin.token"
        with grpc.insecure_channel(self.grpc_target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self._proc.process.poll() is not None:
                    raise RuntimeError(f"fnbox serve exited with {self._proc.process.returncode}")
                try:
                    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if (
                        reply.status == health_pb2.HealthCheckResponse.SERVING
                        and token_file.exists()
                        and token_file.read_text().strip()
                        and self._http_ready()
                    ):
                        return token_file.read_text().strip()
                except grpc.RpcError:
                    pass
                time.sleep(0.05)
        raise TimeoutError(f"fnbox serve not ready within {timeout_s}s")

    def _http_ready(self) -> bool:
        """The gateway answers: the pipeline child of ``fnbox serve`` starts after the
        control service reports SERVING, so gRPC health alone does not say webhooks work."""
        try:
            with urllib.request.urlopen(f"{self.http_base}/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if hasattr(self, "api"):
            self.api.close()
        if hasattr(self, "_proc"):
            self._proc.stop()
        self._tmp.cleanup()

    def __enter__(self) -> FnboxServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FnboxApi:
    """The few calls the scenarios need, over one blocking channel."""

    def __init__(self, target: str, token: str) -> None:
        self._channel = grpc.insecure_channel(target)
        self.functions: Any = service_pb2_grpc.FunctionServiceStub(self._channel)
        self.instances: Any = service_pb2_grpc.InstanceServiceStub(self._channel)
        self.metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),)

    def create_function(
        self,
        display_name: str,
        code: str,
        kind: resources_pb2.FunctionType = resources_pb2.FUNCTION_TYPE_DESTINATION,
    ) -> str:
        """Create and deploy a function; returns its resource name."""
        function = resources_pb2.Function(display_name=display_name, type=kind, code=code)
        created = self.functions.CreateFunction(
            service_pb2.CreateFunctionRequest(function=function), metadata=self.metadata, timeout=30
        )
        self.functions.DeployFunction(
            service_pb2.DeployFunctionRequest(name=created.name), metadata=self.metadata, timeout=30
        )
        name: str = created.name
        return name

    def create_instance(self, function: str, display_name: str, **fields: Any) -> Any:
        """Create an instance of ``function``; returns the Instance message."""
        instance = resources_pb2.Instance(display_name=display_name, function=function, **fields)
        return self.instances.CreateInstance(
            service_pb2.CreateInstanceRequest(instance=instance), metadata=self.metadata, timeout=30
        )

    def invoke(self, request: invocation_pb2.InvokeFunctionRequest) -> Any:
        """One InvokeFunction call; returns the InvocationResult."""
        return self.functions.InvokeFunction(request, metadata=self.metadata, timeout=30)

    def close(self) -> None:
        self._channel.close()
