"""Reaching the host from user code: Node globals, the Function constructor of host-realm
objects, string compilation, stack-trace and caller tricks, dynamic import, WebAssembly and
prototype pollution. Every attack reports what it got; none may reach `process`."""

# ruff: noqa: E501  (embedded JavaScript reads better unwrapped)

from __future__ import annotations

import grpc
import orjson
import pytest

from tests.security.helpers import INSERT, Server, outcome

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Runs `attempts` (name → thunk) and logs, per attempt, what came back: "denied: <Error>" or
# the typeof of the value. An attempt that yields an object with `env`/`pid` marks ESCAPED.
PROBE = """
function probe(attempts) {
  for (const [name, thunk] of Object.entries(attempts)) {
    let line;
    try {
      const v = thunk();
      const escaped = v !== null && (typeof v === 'object' || typeof v === 'function') && ('env' in v || 'pid' in v || 'mainModule' in v);
      line = escaped ? 'ESCAPED' : 'value ' + typeof v;
    } catch (e) {
      line = 'denied ' + (e && e.name);
    }
    console.log(name + ': ' + line);
  }
}
"""


def report(result: object) -> dict[str, str]:
    logs = list(getattr(result, "logs", []))
    return dict(line.split(": ", 1) for line in logs if ": " in line)


async def test_no_filesystem_through_require(server: Server) -> None:
    code = (
        PROBE
        + """
async function onTrack(event) {
  probe({
    require: () => require('fs').readFileSync('/etc/passwd', 'utf8'),
    moduleRequire: () => module.require('fs'),
    globalRequire: () => globalThis.require('child_process'),
    processMain: () => process.mainModule.require('fs'),
  });
}"""
    )
    seen = report(await server.attack(server.run(code)))
    assert seen == {
        "require": "denied ReferenceError",
        "moduleRequire": "denied ReferenceError",
        "globalRequire": "denied TypeError",
        "processMain": "denied ReferenceError",
    }


async def test_no_node_globals(server: Server) -> None:
    code = """
async function onTrack(event) {
  const names = ['process', 'require', 'module', 'exports', '__dirname', '__filename', 'global',
    'Deno', 'Bun', 'queueMicrotask', 'SharedArrayBuffer', 'WebAssembly', 'structuredClone',
    'performance', 'navigator', 'MessageChannel', 'Worker', 'importScripts'];
  const present = names.filter((n) => typeof globalThis[n] !== 'undefined');
  console.log(JSON.stringify(present));
  let p = globalThis;
  while (Object.getPrototypeOf(p) !== null) p = Object.getPrototypeOf(p);
  console.log(String(p === Object.prototype));
}"""
    result = await server.attack(server.run(code))
    assert outcome(result) == "OK", result.error
    present = orjson.loads(result.logs[0])
    assert not {"process", "require", "module", "global", "__dirname"} & set(present), present
    assert result.logs[1] == "true"  # the global's prototype chain ends in its own realm


async def test_constructor_constructor_of_the_global_and_intrinsics(server: Server) -> None:
    code = (
        PROBE
        + """
async function onTrack(event) {
  probe({
    thisCtor: () => this.constructor.constructor('return process')(),
    objCtor: () => ({}).constructor.constructor('return process')(),
    arrCtor: () => [].constructor.constructor('return process')(),
    fnCtor: () => onTrack.constructor('return process')(),
    asyncCtor: () => (async () => {}).constructor('return process')(),
    genCtor: () => (function* () {}).constructor('return process')(),
    protoCtor: () => Object.getPrototypeOf(Object.getPrototypeOf(onTrack)).constructor.constructor('return process')(),
  });
}"""
    )
    seen = report(await server.attack(server.run(code)))
    assert len(seen) == 7
    assert all(v.startswith("denied") for v in seen.values()), seen


async def test_constructor_of_the_event_and_settings(server: Server) -> None:
    code = (
        PROBE
        + """
async function onTrack(event, settings) {
  probe({
    event: () => event.constructor.constructor('return process')(),
    props: () => event.properties.constructor.constructor('return process')(),
    settings: () => settings.constructor.constructor('return process')(),
    proto: () => event.__proto__.constructor.constructor('return process')(),
  });
  console.log('same realm: ' + (Object.getPrototypeOf(event) === Object.prototype));
}"""
    )
    seen = report(await server.attack(server.run(code, settings={"k": "v"})))
    assert seen.pop("same realm") == "true"
    assert all(v.startswith("denied") for v in seen.values()), seen


async def test_constructor_of_errors_thrown_by_host_functions(server: Server) -> None:
    code = (
        PROBE
        + """
function caught(thunk) { try { thunk(); } catch (e) { return e; } return null; }
async function onTrack(event) {
  const errors = {
    atob: caught(() => atob('*')),
    url: caught(() => new URL('no url')),
    hash: caught(() => crypto.createHash('no-such-hash')),
    decoder: caught(() => new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array([0xff]))),
    buffer: caught(() => Buffer.from('x').readUInt32BE(10)),
  };
  let fetchError = null;
  try { await fetch('not a url'); } catch (e) { fetchError = e; }
  errors.fetch = fetchError;
  const attempts = {};
  for (const [k, e] of Object.entries(errors)) {
    attempts[k] = () => e.constructor.constructor('return process')();
    attempts[k + 'Proto'] = () => Object.getPrototypeOf(e).constructor.constructor('return process')();
    console.log(k + ' realm: ' + (e instanceof Error));
  }
  probe(attempts);
}"""
    )
    seen = report(await server.attack(server.run(code)))
    realms = {k: v for k, v in seen.items() if k.endswith(" realm")}
    assert len(realms) == 6 and set(realms.values()) == {"true"}, realms
    attempts = {k: v for k, v in seen.items() if not k.endswith(" realm")}
    assert len(attempts) == 12
    assert all(v.startswith("denied") for v in attempts.values()), attempts


async def test_constructor_of_runtime_globals(server: Server) -> None:
    code = (
        PROBE
        + """
async function onTrack(event) {
  const targets = { fetch, log: console.log, track: Segment ? Segment.track : null, setTimeout,
    Buffer, URL, Headers, Response, TextEncoder, atob, cache: cache.load, moment, lodash: _.map };
  const attempts = {};
  for (const [k, f] of Object.entries(targets)) {
    attempts[k] = () => f.constructor('return process')();
    attempts[k + 'Deep'] = () => f.constructor.constructor('return process')();
  }
  probe(attempts);
}"""
    )
    seen = report(await server.attack(server.run(code)))
    assert len(seen) == 26
    assert all(v.startswith("denied") for v in seen.values()), seen


async def test_eval_and_string_compilation_refused(server: Server) -> None:
    code = (
        PROBE
        + """
async function onTrack(event) {
  probe({
    eval: () => eval('1 + 1'),
    indirectEval: () => (0, eval)('globalThis'),
    newFunction: () => new Function('return 1')(),
    functionCall: () => Function('return this')(),
    timerString: () => setTimeout('globalThis.x = 1', 0),
    template: () => _.template('<%= process %>')({}),
  });
}"""
    )
    seen = report(await server.attack(server.run(code)))
    assert seen["eval"] == seen["indirectEval"] == "denied EvalError"
    assert seen["newFunction"] == seen["functionCall"] == "denied EvalError"
    assert seen["template"] == "denied EvalError"
    assert seen["timerString"].startswith("denied")


async def test_stack_trace_callsites_expose_nothing(server: Server) -> None:
    # The classic vm escape: Error.prepareStackTrace hands out CallSites whose getThis() /
    # getFunction() may be host objects when host frames are on the stack.
    code = """
async function onTrack(event) {
  const found = [];
  Error.prepareStackTrace = (err, frames) => {
    for (const f of frames) {
      for (const get of ['getThis', 'getFunction']) {
        let v;
        try { v = f[get](); } catch (e) { continue; }
        if (v && (typeof v === 'object' || typeof v === 'function')) {
          try { if (v.constructor.constructor('return process')()) found.push('ESCAPED'); } catch (e) { found.push(e.name); }
        }
      }
    }
    return 'x';
  };
  for (const thunk of [() => JSON.parse('{'), () => atob('*'), () => new URL('x'), () => [].reduce(() => 0)]) {
    try { thunk(); } catch (e) { e.stack; }
  }
  await new Promise((resolve) => setTimeout(() => { try { null.x; } catch (e) { e.stack; } resolve(); }, 1));
  console.log(JSON.stringify(found));
}"""
    result = await server.attack(server.run(code))
    assert outcome(result) == "OK", result.error
    found = orjson.loads(result.logs[0])
    assert "ESCAPED" not in found


async def test_caller_chain_reaches_no_host_function(server: Server) -> None:
    code = """
function walk(start) {
  const seen = [];
  let f = start;
  for (let i = 0; i < 20 && f; i++) {
    try { f.constructor('return process')(); seen.push('ESCAPED'); } catch (e) { seen.push(e.name); }
    try { f = f.caller; } catch (e) { seen.push('caller ' + e.name); break; }
  }
  return seen;
}
function sloppy() { return walk(sloppy); }
async function onTrack(event) {
  const seen = sloppy();
  await new Promise((resolve) => setTimeout(function later() { seen.push(...walk(later)); resolve(); }, 1));
  [1].forEach(function each() { seen.push(...walk(each)); });
  console.log(JSON.stringify(seen));
}"""
    result = await server.attack(server.run(code))
    assert outcome(result) == "OK", result.error
    assert "ESCAPED" not in orjson.loads(result.logs[0])


async def test_dynamic_import_refused(server: Server) -> None:
    code = "async function onTrack(event) { const fs = await import('node:fs'); return fs.readFileSync('/etc/passwd', 'utf8'); }"
    async with server.benign_traffic():
        try:
            result = await server.run(code)
        except grpc.aio.AioRpcError as error:  # refused when the code is checked
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "import()" in (error.details() or "")
            return
    assert outcome(result) == "ERROR"  # or refused when the code is loaded
    assert result.error.name == "SyntaxError" and "import()" in result.error.message
    assert "root:" not in result.error.message


async def test_webassembly_compilation_refused(server: Server) -> None:
    # The smallest valid module: "\0asm" + version 1.
    code = (
        PROBE
        + """
async function onTrack(event) {
  const bytes = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
  const WA = globalThis.WebAssembly;
  probe({ module: () => new WA.Module(bytes) });
  try { await WA.compile(bytes); console.log('compile: value'); } catch (e) { console.log('compile: denied ' + e.name); }
}"""
    )
    seen = report(await server.attack(server.run(code)))
    assert seen["module"].startswith("denied") and seen["compile"].startswith("denied"), seen


async def test_prototype_pollution_stays_in_its_own_context(server: Server) -> None:
    # Poison every intrinsic the runtime might use on the way out; the worker must still answer
    # with a well-formed frame (the parent sees an outcome, not a broken stream), and the
    # benign function (another process) is untouched.
    code = """
Object.prototype.polluted = 'yes';
Array.prototype.polluted = 'yes';
Object.defineProperty(Object.prototype, 'outcome', { get() { return 'OK'; }, configurable: true });
Object.prototype.toJSON = function () { return 'hijacked'; };
async function onTrack(event) {
  JSON.stringify = () => { throw new Error('stringify poisoned'); };
  JSON.parse = () => ({ outcome: 'OK' });
  Promise.prototype.then = function () { return this; };
  Array.prototype.push = function () { return 0; };
  return event;
}"""
    first = await server.attack(server.run(code, type=INSERT))
    again = await server.run(code, type=INSERT)
    for result in (first, again):
        assert outcome(result) in {"OK", "ERROR"}, result
        assert b"hijacked" not in result.returned


async def test_proto_keys_in_the_payload_pollute_nothing(server: Server) -> None:
    code = """
async function onTrack(event) {
  console.log(String(({}).isAdmin) + ' ' + String(event.isAdmin) + ' ' + Object.keys(event).includes('__proto__'));
}"""
    event = b'{"type":"track","event":"e","__proto__":{"isAdmin":true},"constructor":{"prototype":{"isAdmin":true}}}'
    result = await server.attack(server.run(code, event=event))
    assert outcome(result) == "OK", result.error
    assert result.logs[0] == "undefined undefined true"


async def test_no_child_process_or_thread_can_be_started(server: Server) -> None:
    code = (
        PROBE
        + """
async function onTrack(event) {
  probe({
    childProcess: () => require('child_process').execSync('id'),
    binding: () => process.binding('spawn_sync'),
    worker: () => new Worker('data:text/javascript,1'),
    workerGlobal: () => new globalThis.Worker('x'),
    sharedWorker: () => new SharedWorker('x'),
    dlopen: () => process.dlopen({}, '/lib/x86_64-linux-gnu/libc.so.6'),
    kill: () => process.kill(1, 'SIGTERM'),
  });
}"""
    )
    seen = report(await server.attack(server.run(code)))
    assert len(seen) == 7
    assert all(v.startswith("denied") for v in seen.values()), seen


async def test_fetch_cannot_read_files(server: Server) -> None:
    code = """
async function onTrack(event) {
  for (const url of ['file:///etc/passwd', 'file:///proc/self/environ']) {
    try { const r = await fetch(url); console.log('read ' + (await r.text()).length); }
    catch (err) { console.log('refused ' + err.name); }
  }
}"""
    result = await server.attack(server.run(code))
    assert outcome(result) == "OK", result.error
    assert list(result.logs) == ["refused TypeError", "refused TypeError"]
