"""SEGMENT-SPEC §6 (runtime environment: globals, sandbox, cache) and §8.13, §8.14.

SPEC → tests
- §6 / §8.13 fetch, _, btoa, atob, Buffer, URL, crypto, cache and the other documented and
  boreal globals are defined [doc+boreal] → test_documented_globals_are_defined
- §6 / §8.13 require, exports, module are not defined (ReferenceError) [doc]
  → test_require_exports_and_module_are_not_defined
- §6 / §8.13 no Node built-ins beyond crypto (and https): no process, fs, child_process, no
  import() [doc] → test_node_builtins_and_imports_are_unavailable
- §6 crypto works like node's (createHmac, createHash, randomUUID) [doc]
  → test_crypto_is_nodes_crypto
- §6 window is the global object [boreal] → test_window_is_the_global_object
- §6 fetch makes outbound HTTP calls (node-fetch API) [doc] → test_fetch_reaches_an_http_endpoint
- §6 outbound traffic: fnbox refuses loopback/private/link-local addresses unless allowed
  (docs/segment-compat.md) → test_fetch_to_a_private_address_is_refused_unless_allowed
- §6 the editor shows at most 4 KB of console output (fnbox: 16 KiB per invocation, marked
  truncated) → test_console_output_is_capped_and_marked_truncated
- §6 lodash and moment-timezone are the libraries of those names [doc]
  → test_lodash_and_moment_work
- §6 platform SDK globals not shipped by fnbox (AWS, stripe, twilio, ...) are absent
  (docs/segment-compat.md) → test_platform_sdk_globals_are_absent
- §6 / §8.14 cache.load(key, ttl, fn) calls fn once within the TTL (across invocations)
  → test_cache_load_calls_fn_once_within_ttl
- §6 / §8.14 cache.load calls fn again after the TTL → test_cache_load_calls_fn_again_after_ttl
- §6 / §8.14 cache.delete(key) forces a reload → test_cache_delete_forces_a_reload
- §6 ttl omitted or -1 means no expiry → test_cache_without_ttl_never_expires
- §6 / §8.14 editor test: the cache is cold for new code (fnbox reuses a warm worker only for
  identical unsaved code: docs/segment-compat.md) → test_run_of_new_code_starts_with_a_cold_cache
- fnbox: RunFunction of identical code reuses the warm worker (and its cache)
  → test_run_of_identical_code_reuses_its_warm_worker
- §6 the cache is per function version (a deploy starts cold) [doc: per container]
  → test_cache_is_not_shared_between_versions
"""

# ruff: noqa: E501  (embedded JavaScript and the SPEC map read better unwrapped)

from __future__ import annotations

import hashlib
import hmac

import pytest
from aiohttp import web
from fnbox.client import InvalidArgument

from tests.conformance.harness import (
    DESTINATION,
    ERROR,
    OK,
    Conformance,
    describe,
    event,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

DOCUMENTED_GLOBALS = [
    # SPEC §6 production list, as far as fnbox ships them
    "atob", "btoa", "fetch", "fetchretrylib", "FormData", "OAuth", "jsonwebtoken", "_",
    "moment", "xml", "xml2js", "libphonenumberjslib", "uuidv5", "zlib", "cache",
    # boreal's window
    "crypto", "console", "Buffer", "URL", "URLSearchParams", "Request", "Response",
    "Headers", "setTimeout", "clearTimeout", "setInterval", "clearInterval",
    "ValidationError", "EventNotSupported", "InvalidEventPayload", "RetryError", "DropEvent",
    "Segment", "window",
]  # fmt: skip
ABSENT_SDKS = [
    "AWS", "stripe", "twilio", "sendgrid", "google", "jsforce", "hubspotlib",
    "mailchimplib", "nodemailjet", "skyflowlib", "winstonlib",
]  # fmt: skip


def typeof_log(names: list[str]) -> str:
    listing = ", ".join(f"'{n}: ' + typeof {n}" for n in names)
    return f"async function onTrack(event) {{ for (const line of [{listing}]) console.log(line) }}"


async def test_documented_globals_are_defined(conformance: Conformance) -> None:
    result = await conformance.run(DESTINATION, typeof_log(DOCUMENTED_GLOBALS), event=event())
    assert result.outcome == OK, describe(result)
    undefined = [line for line in result.logs if line.endswith(": undefined")]
    assert undefined == []
    assert len(result.logs) == len(DOCUMENTED_GLOBALS)


async def test_require_exports_and_module_are_not_defined(conformance: Conformance) -> None:
    for name, call in (
        ("require", "require('fs')"),
        ("exports", "exports.x = 1"),
        ("module", "module.exports"),
    ):
        code = f"async function onTrack(event) {{ {call} }}"
        result = await conformance.run(DESTINATION, code, event=event())
        assert (result.outcome, result.error.name, result.error.message) == (
            ERROR,
            "ReferenceError",
            f"{name} is not defined",
        )


async def test_node_builtins_and_imports_are_unavailable(conformance: Conformance) -> None:
    code = typeof_log(["process", "global", "__dirname", "Deno", "child_process", "fs"])
    result = await conformance.run(DESTINATION, code, event=event())
    assert all(line.endswith(": undefined") for line in result.logs), list(result.logs)
    importing = "async function onTrack(event) { const fs = await import('node:fs') }"
    with pytest.raises(InvalidArgument) as refused:
        await conformance.run(DESTINATION, importing, event=event())
    assert refused.value.reason == "SYNTAX_ERROR"


async def test_crypto_is_nodes_crypto(conformance: Conformance) -> None:
    code = """
    async function onTrack(event) {
      console.log(crypto.createHmac('sha256', 'secret').update('body').digest('hex'))
      console.log(crypto.createHash('md5').update('abc').digest('hex'))
      console.log(/^[0-9a-f-]{36}$/.test(crypto.randomUUID()))
    }"""
    result = await conformance.run(DESTINATION, code, event=event())
    assert list(result.logs) == [
        hmac.new(b"secret", b"body", "sha256").hexdigest(),
        hashlib.md5(b"abc").hexdigest(),
        "true",
    ], describe(result)


async def test_window_is_the_global_object(conformance: Conformance) -> None:
    code = (
        "async function onTrack(e) { console.log(window === globalThis, window.fetch === fetch) }"
    )
    result = await conformance.run(DESTINATION, code, event=event())
    assert list(result.logs) == ["true true"], describe(result)


async def test_fetch_reaches_an_http_endpoint(conformance: Conformance) -> None:
    received: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"id": 7}, status=201)

    app = web.Application()
    app.router.add_post("/v1/items", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        code = f"""
        async function onTrack(event, settings) {{
          const response = await fetch('http://127.0.0.1:{port}/v1/items', {{
            method: 'POST', headers: {{ 'Content-Type': 'application/json' }},
            body: JSON.stringify({{ name: event.event }}),
          }})
          const body = await response.json()
          console.log(response.status, response.ok, body.id)
        }}"""
        result = await conformance.run(DESTINATION, code, event=event())
    finally:
        await runner.cleanup()
    assert list(result.logs) == ["201 true 7"], describe(result)
    assert received == [b'{"name":"Order Completed"}']
    assert [(r.method, r.status) for r in result.requests] == [("POST", 201)]


async def test_fetch_to_a_private_address_is_refused_unless_allowed(
    conformance: Conformance,
) -> None:
    # The suite's server allows 127.0.0.1/32 only; 127.0.0.2 is loopback too, but not allowed.
    code = "async function onTrack(event) { await fetch('http://127.0.0.2:8080/internal') }"
    result = await conformance.run(DESTINATION, code, event=event())
    assert result.outcome == ERROR, describe(result)
    (request,) = result.requests
    assert request.status == 0 and "EGRESS_DENIED" in request.error


async def test_console_output_is_capped_and_marked_truncated(conformance: Conformance) -> None:
    code = "async function onTrack(e) { for (let i = 0; i < 400; i++) console.log('x'.repeat(99)) }"
    result = await conformance.run(DESTINATION, code, event=event())
    assert result.outcome == OK and result.logs_truncated
    assert sum(len(line) + 1 for line in result.logs[:-1]) <= 16 * 1024
    assert result.logs[-1].startswith("… logs truncated")


async def test_lodash_and_moment_work(conformance: Conformance) -> None:
    code = """
    async function onTrack(event) {
      console.log(_.get(event, 'properties.items[1].sku'), _.chunk([1, 2, 3], 2).length)
      console.log(moment.tz('2024-01-15T12:00:00Z', 'America/New_York').format('YYYY-MM-DD HH:mm'))
    }"""
    payload = event(properties={"items": [{"sku": "a"}, {"sku": "b"}]})
    result = await conformance.run(DESTINATION, code, event=payload)
    assert list(result.logs) == ["b 2", "2024-01-15 07:00"], describe(result)


async def test_platform_sdk_globals_are_absent(conformance: Conformance) -> None:
    result = await conformance.run(DESTINATION, typeof_log(ABSENT_SDKS), event=event())
    assert [line.split(": ")[1] for line in result.logs] == ["undefined"] * len(ABSENT_SDKS)


COUNTING = """
let loads = 0
async function onTrack(event) {
  const value = await cache.load(event.properties.key, event.properties.ttl, async () => {
    loads += 1
    return 'v' + loads
  })
  if (event.properties.del) cache.delete(event.properties.key)
  if (event.properties.wait) await new Promise((r) => setTimeout(r, event.properties.wait))
  console.log(value, loads)
}"""


def cached(key: str, ttl: int | None = 60_000, **extra: object) -> bytes:
    properties: dict[str, object] = {"key": key, **extra}
    if ttl is not None:
        properties["ttl"] = ttl
    return event(properties=properties)


async def _logs(conformance: Conformance, target: str, payload: bytes) -> list[str]:
    result = await conformance.invoke(target, event=payload)
    assert result.outcome == OK, describe(result)
    return list(result.logs)


async def test_cache_load_calls_fn_once_within_ttl(conformance: Conformance) -> None:
    fn = await conformance.deployed(DESTINATION, COUNTING)
    first = await _logs(conformance, fn.name, cached("k", 60_000))
    second = await _logs(conformance, fn.name, cached("k", 60_000))
    assert first + second == ["v1 1", "v1 1"]


async def test_cache_load_calls_fn_again_after_ttl(conformance: Conformance) -> None:
    fn = await conformance.deployed(DESTINATION, COUNTING)
    # The first call outlives its 100 ms TTL by waiting 150 ms (the timer is the behaviour
    # under test, not synchronisation).
    first = await _logs(conformance, fn.name, cached("k", 100, wait=150))
    second = await _logs(conformance, fn.name, cached("k", 100))
    assert first + second == ["v1 1", "v2 2"]


async def test_cache_delete_forces_a_reload(conformance: Conformance) -> None:
    fn = await conformance.deployed(DESTINATION, COUNTING)
    first = await _logs(conformance, fn.name, cached("k", 60_000, **{"del": True}))
    second = await _logs(conformance, fn.name, cached("k", 60_000))
    third = await _logs(conformance, fn.name, cached("k", 60_000))
    assert first + second + third == ["v1 1", "v2 2", "v2 2"]


async def test_cache_without_ttl_never_expires(conformance: Conformance) -> None:
    code = """
    let loads = 0
    async function onTrack(event) {
      const a = await cache.load('a', async () => ++loads)
      const b = await cache.load('b', -1, async () => ++loads)
      await new Promise((r) => setTimeout(r, 20))
      console.log(await cache.load('a', async () => ++loads), await cache.load('b', -1, async () => ++loads), loads)
    }"""
    fn = await conformance.deployed(DESTINATION, code)
    assert await _logs(conformance, fn.name, event()) == ["1 2 2"]
    assert await _logs(conformance, fn.name, event()) == ["1 2 2"]


async def test_run_of_new_code_starts_with_a_cold_cache(conformance: Conformance) -> None:
    for n in range(2):
        code = f"{COUNTING}\n// edit {n}"
        result = await conformance.run(DESTINATION, code, event=cached("k"))
        assert list(result.logs) == ["v1 1"], describe(result)


async def test_cache_is_not_shared_between_versions(conformance: Conformance) -> None:
    fn = await conformance.deployed(DESTINATION, COUNTING)
    assert await _logs(conformance, fn.name, cached("k")) == ["v1 1"]
    await conformance.client.functions.update(fn.name, code=COUNTING + "\n// v2")
    await conformance.client.functions.deploy(fn.name)
    assert await _logs(conformance, fn.name, cached("k")) == ["v1 1"]


async def test_run_of_identical_code_reuses_its_warm_worker(conformance: Conformance) -> None:
    # Deliberately different from Segment's always-cold editor test (docs/segment-compat.md).
    code = f"{COUNTING}\n// unchanged"
    first = await conformance.run(DESTINATION, code, event=cached("k"))
    second = await conformance.run(DESTINATION, code, event=cached("k"))
    assert list(first.logs) + list(second.logs) == ["v1 1", "v1 1"]
