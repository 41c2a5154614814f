"""No host-realm object is reachable from user code; the classic vm escapes fail."""

# ruff: noqa: E501  (embedded JavaScript reads better unwrapped)

from __future__ import annotations

import pytest

from tests.runtime.conftest import Runtime

# Walks everything reachable from globalThis (and from values the globals hand out: thrown
# errors, promises, responses, keys...) and reports any object whose prototype chain does not
# end in this realm's Object.prototype, or any function whose constructor is foreign.
WALKER = r"""
const FN_CTORS = new Set([Function, (async () => {}).constructor, (function* () {}).constructor, (async function* () {}).constructor]);
const seen = new Set();
const foreign = [];
function check(v, path) {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function') || seen.has(v)) return;
  seen.add(v);
  let p = v; let last = null;
  while (p !== null) { last = p; p = Object.getPrototypeOf(p); }
  if (last !== Object.prototype && last !== v) foreign.push(path + ' (prototype chain)');
  if (typeof v === 'function' && v !== Function.prototype && !FN_CTORS.has(Object.getPrototypeOf(v).constructor)) foreign.push(path + ' (function)');
  if (seen.size > 200000) return;
  for (const k of Reflect.ownKeys(v)) {
    let d;
    try { d = Object.getOwnPropertyDescriptor(v, k); } catch (e) { continue; }
    if (!d) continue;
    const name = path + '.' + String(k);
    if ('value' in d) check(d.value, name);
    if (d.get) check(d.get, name + '<get>');
    if (d.set) check(d.set, name + '<set>');
  }
  check(Object.getPrototypeOf(v), path + '.__proto__');
}
const caught = {};
async function grab(name, fn) {
  try { const v = await fn(); caught[name] = v; } catch (e) { caught[name + '!'] = e; }
}
"""

PROBES = r"""
for (const k of Reflect.ownKeys(globalThis)) { try { globalThis[k]; } catch (e) {} }  // force lazy globals
await grab('atob', () => atob('*'));
await grab('url', () => new URL('nope'));
await grab('hash', () => crypto.createHash('no-such-hash'));
await grab('hmac', () => crypto.createHmac('sha256', 'k').update('x').digest());
await grab('key', () => crypto.createPrivateKey('not a key'));
await grab('subtle', () => crypto.subtle.digest('SHA-256', new Uint8Array(1)));
await grab('subtleErr', () => crypto.subtle.digest('NOPE', new Uint8Array(1)));
await grab('jwt', () => jsonwebtoken.verify('a.b.c', 'k'));
await grab('jwtSign', () => jsonwebtoken.sign({a: 1}, 'k'));
await grab('zlib', () => zlib.zlib.gunzipSync(Buffer.from('garbage')));
await grab('decode', () => new TextDecoder('utf-8', {fatal: true}).decode(new Uint8Array([0xff])));
await grab('fetch', () => fetch('http://127.0.0.1:9/'));
await grab('fetchBad', () => fetch('not a url'));
await grab('response', () => new Response('x', {headers: {a: 'b'}}));
await grab('timer', () => setTimeout(() => {}, 0));
await grab('moment', () => moment.tz('2020-01-01', 'Europe/Paris'));
await grab('xml2js', () => xml2js.parseStringPromise('<a>1</a>'));
await grab('xml2jsErr', () => xml2js.parseStringPromise('<a>'));
await grab('phone', () => libphonenumberjslib.libphonenumberjs.parsePhoneNumber('+12133734253'));
await grab('cacheErr', () => cache.load('x', 10, () => { throw new Error('e') }));
await grab('deep', () => { const f = () => { try { return f(); } catch (e) { return console.log('x'); } }; return f(); });
check(globalThis, 'globalThis');
check(caught, 'caught');
"""


def test_nothing_reachable_comes_from_the_host(rt: Runtime) -> None:
    covered = "[_.map, moment.fn, xml2js.Parser, Buffer.prototype, crypto.subtle, jsonwebtoken.sign].every(v => seen.has(v))"
    r = rt.run(
        WALKER
        + PROBES
        + f"console.log(JSON.stringify(foreign.slice(0, 20)), {covered}, Object.keys(caught).length)"
    )
    assert r["outcome"] == "OK", r
    found, libraries_covered, probes = r["logs"][-1].rsplit(" ", 2)
    assert found == "[]"
    assert libraries_covered == "true"  # the walk really covered the lazily loaded libraries
    assert probes == "21"


ESCAPES = [
    "this.constructor.constructor('return process')()",
    "console.log.constructor('return process')()",
    "fetch.constructor('return process')()",
    "Segment.track.constructor('return process')()",
    "(() => { try { atob('*') } catch (e) { return e.constructor.constructor('return process')() } })()",
    "(() => { try { new URL('x') } catch (e) { return e.constructor.constructor('return process')() } })()",
    "Buffer.from('x').constructor.constructor('return process')()",
    "_.map.constructor('return process')()",
    "eval('process')",
    "new Function('return process')()",
]


@pytest.mark.parametrize("expr", ESCAPES)
def test_function_constructor_escapes_fail(rt: Runtime, expr: str) -> None:
    r = rt.run(
        f"let got; try {{ got = {expr} }} catch (e) {{ got = e.name }}\nconsole.log(typeof got === 'object' ? 'ESCAPED' : got)"
    )
    assert r["outcome"] == "OK", r
    assert r["logs"][0] in {"EvalError", "ReferenceError"}


@pytest.mark.parametrize("name", ["require", "process", "module", "exports", "global", "__dirname"])
def test_node_globals_are_not_defined(rt: Runtime, name: str) -> None:
    r = rt.run(f"console.log(typeof {name}); {name}")
    assert r["logs"] == ["undefined"]
    assert r["outcome"] == "ERROR"
    assert r["error"]["name"] == "ReferenceError"
    assert r["error"]["message"] == f"{name} is not defined"


def test_exports_assignment_is_a_reference_error_at_load(rt: Runtime) -> None:
    reply = rt.load("exports.onTrack = async () => {}")
    assert not reply["ok"]
    assert reply["error"]["message"] == "exports is not defined"


def test_prototype_pollution_stays_in_the_context(rt: Runtime) -> None:
    body = """
    Object.prototype.polluted = 'yes'; Function.prototype.polluted = 'yes'; Array.prototype.polluted = 'yes';
    Object.prototype.toJSON = function () { return 'hijacked' };
    event.__proto__.polluted = 'yes';
    try { fetch.__proto__.polluted = 'yes' } catch (e) {}
    """
    rt.run(body)
    probe = rt.call("host_probe")
    assert probe == {"id": probe["id"], "toJSON": "undefined"}
    # the polluted context keeps working; its own results are its business
    assert rt.run("console.log('fine')")["logs"] == ["fine"]


def test_user_patched_intrinsics_cannot_break_the_host(rt: Runtime) -> None:
    body = """
    JSON.stringify = () => ({ not: 'a string' });
    JSON.parse = () => { throw new Error('patched') };
    Promise.prototype.then = function () { return 'broken' };
    console.log('still logging');
    """
    rt.loaded(f"async function onTrack() {{ {body} }}")
    r = rt.event({"type": "track"})
    assert r["outcome"] in {"OK", "ERROR"}
    assert r["logs"] == ["still logging"]
    probe = rt.call("host_probe")
    assert "polluted" not in probe


@pytest.mark.parametrize(
    ("code", "line", "column"),
    [
        ("async function onTrack() {\n  const fs = await import('node:fs')\n}", 2, 20),
        ("async function onTrack() { return import /* c */ ('x') }", 1, 35),
    ],
)
def test_dynamic_import_is_refused_at_load(rt: Runtime, code: str, line: int, column: int) -> None:
    reply = rt.load(code)
    assert not reply["ok"]
    assert reply["error"]["message"] == "import() is not supported in functions"
    assert (reply["error"]["line"], reply["error"]["column"]) == (line, column)
    problem = rt.call("check", code=code)["error"]
    assert (problem["line"], problem["column"]) == (line, column)


@pytest.mark.parametrize(
    "code",
    [
        "// import('x')\nasync function onTrack() {}",
        "const s = 'import(x)'; const t = `import(${1})`; async function onTrack() {}",
        "const r = /import\\(/; const o = {import(x) { return x }}; o.import(1); async function onTrack() {}",
    ],
)
def test_the_word_import_elsewhere_is_fine(rt: Runtime, code: str) -> None:
    rt.loaded(code)
