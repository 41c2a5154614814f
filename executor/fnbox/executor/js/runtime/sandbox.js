'use strict';
/*
 * The Segment-compatible runtime: loads one user function into a fresh vm context and invokes it.
 *   check(code, filename?) -> null | {name, message, line, column}   (compiles only, runs nothing)
 *   load({type, code, filename, options, onStrayLog}) -> {invoke(kind, segments, trace)}
 * See executor/fnbox/executor/PROTOCOL.md for the result shape.
 *
 * Isolation inside the process (EXECUTOR-NOTES §5, row E). The process, not vm, is the security
 * boundary (one tenant per worker, --permission, --disallow-code-generation-from-strings); vm is
 * defence in depth, built so that no host-realm object is reachable from user code:
 *  - the context's global is a null-prototype object, string/wasm code generation is off;
 *  - every global (console, Segment, fetch, URL, Headers, Buffer, crypto, timers, cache, the
 *    libraries) is created *inside* the context by the scripts in ./context/, over host functions
 *    that take and return primitives only (bytes cross as latin1 strings, structured data as JSON
 *    text); host errors are re-created in-context (name + message) by `lib.call`, which also
 *    covers the host RangeError thrown when a host function is entered at stack exhaustion;
 *  - events, settings and request metadata enter as JSON text parsed in-context; results leave
 *    as text produced by in-context JSON.stringify;
 *  - libraries (lodash, moment-timezone, xml, xml2js, oauth-1.0a, uuid, libphonenumber-js,
 *    fetch-retry, buffer, events) are evaluated inside the context from their files under js/
 *    by an in-context CommonJS loader (./context/modules.js) whose node builtins are in-context
 *    shims; jsonwebtoken, zlib and node:crypto objects stay on the host behind JSON/latin1
 *    wrappers and numeric handles;
 *  - code containing a dynamic import() is refused at load (./scan.js): without
 *    --experimental-vm-modules Node rejects import() with a host-realm error object.
 * What remains exposed: nothing host-realm that tests/runtime/test_isolation.py's walker can
 * find. Users can still replace in-context intrinsics the bootstrap uses later (JSON, Promise,
 * Array.prototype...), which can corrupt their own results but not reach the host, because the
 * host checks that what it receives is a primitive. `lodash.template` and anything else that
 * compiles strings fails (EvalError), as intended.
 *
 * Choices where Segment is silent: a form-encoded body's request.json() is an object of its
 * fields (a repeated field becomes an array); an insert function passes an event of an unknown
 * type through unchanged; batch entries get status 200 (OK), 500 (RETRY) or 400 (anything else,
 * DROP included); when onBatch throws, every entry carries the error's outcome.
 */

const path = require('node:path');
const vm = require('node:vm');
const { makeHost, invocations, addLog, nowMs } = require('./host.js');
const { makeFetchHost } = require('./hostfetch.js');
const { makeCryptoHost } = require('./hostcrypto.js');
const { makeModulesHost } = require('./hostmodules.js');
const { hostLibs } = require('./hostlibs.js');
const { findDynamicImport } = require('./scan.js');
const { compileContextScript } = require('./codecache.js');

const HANDLER_NAMES = ['onIdentify', 'onTrack', 'onPage', 'onScreen', 'onGroup', 'onAlias', 'onDelete', 'onBatch', 'onRequest'];
const TYPES = new Set(['SOURCE', 'DESTINATION', 'INSERT_DESTINATION', 'INSERT_SOURCE']);
const OUTCOMES = new Set(['OK', 'EVENT_NOT_SUPPORTED', 'INVALID_EVENT_PAYLOAD', 'VALIDATION_ERROR', 'RETRY', 'DROP', 'ERROR']);
const DEFAULT_LIMITS = { max_log_bytes: 64 * 1024, max_events: 1000, max_result_bytes: 4 * 1024 * 1024 };
const CONTEXT_SCRIPTS = ['inspect', 'core', 'web', 'fetch', 'modules', 'crypto', 'libs'].map(compileContextScript);

let active = null; // the loaded function's runtime (one per worker process)

function wrap(code) {
  const holder = `__fnbox${Math.floor(Math.random() * 1e9)}`;
  const getter = HANDLER_NAMES.map((n) => `${n}: ${n}`).join(', ');
  // Handlers are parameters so that `function onTrack` and `var/assignment` bind them and a
  // top-level `const onTrack` is a SyntaxError, as in Segment's runtime. The first line is the
  // wrapper's own, hence lineOffset -1: stack traces show the user's line numbers.
  return `(function (${holder}, ${HANDLER_NAMES.join(', ')}) { ${holder}.get = function () { return { ${getter} }; };\n${code}\n})`;
}

function compile(code, filename) {
  let script;
  try {
    script = new vm.Script(wrap(String(code)), { filename: filename || 'function.js', lineOffset: -1 });
  } catch (err) {
    throw unwrappedSyntaxError(String(code), filename) || err;
  }
  const at = findDynamicImport(String(code));
  if (at) {
    const err = new SyntaxError('import() is not supported in functions');
    err.stack = `${filename || 'function.js'}:${at.line}\n\nSyntaxError: ${err.message}`;
    Object.assign(err, at);
    throw err;
  }
  return script;
}

/**
 * The code's syntax error when it is parsed alone as the handlers' function body (nothing is
 * run). Code that closes the wrapper early (a stray `}`) fails in the wrapper past its own last
 * line; parsed alone, it fails at the stray brace, on the user's line and column.
 */
function unwrappedSyntaxError(code, filename) {
  try {
    vm.compileFunction(code, ['__fnbox', ...HANDLER_NAMES], { filename: filename || 'function.js' });
  } catch (err) {
    if (err && err.name === 'SyntaxError') return err;
  }
  return null;
}

/** {line, column} (1-based) of a compile error, read from V8's "file:line" + caret lines. */
function syntaxPosition(err, filename) {
  if (Number.isInteger(err.line) && Number.isInteger(err.column)) return { line: err.line, column: err.column };
  const lines = String(err.stack || '').split('\n');
  let line = 0;
  let column = 0;
  const m = /:(\d+)$/.exec(lines[0] || '');
  if (m) line = Number(m[1]);
  const caret = lines.findIndex((l, i) => i > 0 && /^\s*\^+\s*$/.test(l));
  if (caret > 0) column = lines[caret].indexOf('^') + 1;
  void filename;
  return { line, column };
}

/** Syntax check only; runs nothing. */
function check(code, filename) {
  try {
    compile(code, filename);
    return null;
  } catch (err) {
    const { line, column } = syntaxPosition(err, filename);
    return { name: String(err.name), message: String(err.message), line, column };
  }
}

function limitsFrom(options) {
  const o = options || {};
  const pick = (k) => (Number.isFinite(o[k]) && o[k] > 0 ? o[k] : DEFAULT_LIMITS[k]);
  return { max_log_bytes: pick('max_log_bytes'), max_events: pick('max_events'), max_result_bytes: pick('max_result_bytes') };
}

// A context with the runtime's globals, built by prepare() ahead of the next `load`: nothing in
// it depends on the user's code or options (those are filled into `opts` and `state` when it is
// taken). Used by exactly one function, like a context built on the spot.
let spare = null;

function runtimeContext() {
  const opts = {};
  const state = { limits: limitsFrom(opts), options: opts, onStrayLog: () => {} };
  const ctx = vm.createContext(Object.create(null), { codeGeneration: { strings: false, wasm: false } });
  const [g, lib] = vm.runInContext('[globalThis, {}]', ctx);
  lib.hostDir = path.dirname(__dirname);
  const host = {
    ...makeHost(state), ...makeFetchHost(opts), ...makeCryptoHost(), ...makeModulesHost(ctx, lib), ...hostLibs,
  };
  for (const { script } of CONTEXT_SCRIPTS) script.runInContext(ctx)(host, g, lib);
  return { ctx, lib, state, opts };
}

async function load({ type, code, filename, options, onStrayLog }) {
  if (!TYPES.has(type)) throw new Error(`unknown function type ${type}`);
  let script;
  try {
    script = compile(code, filename);
  } catch (err) {
    const e = new Error(String(err.message));
    e.name = String(err.name);
    Object.assign(e, syntaxPosition(err, filename));
    e.stack = `${e.name}: ${e.message}\n    at ${filename || 'function.js'}:${e.line}:${e.column}`;
    throw e;
  }
  const { ctx, lib, state, opts } = spare || runtimeContext();
  spare = null;
  Object.assign(opts, options || {});
  state.limits = limitsFrom(opts);
  state.onStrayLog = typeof onStrayLog === 'function' ? onStrayLog : () => {};
  const runtime = lib.runtime;
  const wrapper = script.runInContext(ctx);
  const failure = runtime.define(wrapper, type);
  if (failure !== null) {
    const info = JSON.parse(failure);
    const e = new Error(String(info.message));
    e.name = String(info.name);
    e.stack = String(info.stack || `${e.name}: ${e.message}`);
    throw e;
  }
  active = { runtime, state };
  // Every result names the handlers the top level defined (the delivery batches by them).
  let handlers = '';
  try {
    const names = runtime.definedHandlers();
    if (typeof names === 'string') handlers = names;
  } catch { /* a primitive or nothing */ }
  return {
    invoke: (kind, segments, trace) => invoke(runtime, state, kind, segments, trace).then((r) => {
      r.handlers = handlers;
      return r;
    }),
  };
}

/**
 * Called once by worker.js while the worker waits in the warm pool (PROTOCOL.md): runs the
 * load and invoke paths on a throwaway function of ours, so that the first real `load` and
 * `invoke` do not pay for V8's lazy compilation of the runtime (bench: a process's first load
 * takes ~4-8 ms, later ones ~1-2 ms), then builds the context the next `load` will take
 * (another ~1.6 ms saved). Runs no user code; the throwaway context is dropped. If the real
 * `load` arrives first, all of this is skipped (it would only delay it).
 */
function prepare() {
  // A worker spawned for a function gets its `load` right after the handshake: warm up only
  // if none came in the meantime (a worker idling in the warm pool).
  setTimeout(warmUp, 20).unref();
}

function warmUp() {
  if (active) return;
  const pending = load({ type: 'DESTINATION', code: 'async function onTrack(event, settings) {}', filename: 'fnbox-warm-up.js' });
  const warm = active;
  const event = Buffer.from('{"type":"track","event":"warm-up","userId":"u"}');
  const settings = Buffer.from('{}');
  pending
    .then((fn) => fn.invoke('event', [event, settings], {}))
    .catch(() => {})
    .finally(() => {
      if (active !== warm) return; // a real function was loaded meanwhile
      active = null;
      if (!spare) spare = runtimeContext();
    });
}

const text = (b) => (b === undefined || b === null ? '' : Buffer.isBuffer(b) ? b.toString('utf8') : String(b));

function invoke(runtime, state, kind, segments, trace) {
  const segs = segments || [];
  return new Promise((resolve) => {
    const inv = {
      done: false, logs: [], logBytes: 0, logsDropped: 0, events: [], objects: [], requests: [],
      overflow: null, batchBytes: 0, start: nowMs(),
      traceparent: trace && typeof trace.traceparent === 'string' ? trace.traceparent : '',
      finish(resultText) {
        inv.done = true;
        resolve(buildResult(state, inv, resultText, kind));
      },
    };
    invocations.run(inv, () => {
      if (kind === 'request') runtime.invoke('request', text(segs[0]), text(segs[1]), text(segs[2]) || '{}');
      else if (kind === 'event' || kind === 'batch') {
        const payload = text(segs[0]);
        inv.batchBytes = payload.length;
        runtime.invoke(kind, payload, text(segs[1]) || '{}', '');
      }
      else inv.finish(JSON.stringify({ outcome: 'ERROR', error: { name: 'Error', message: `unknown invocation kind ${kind}`, stack: '' } }));
    });
  });
}

function errorOf(v) {
  if (!v || typeof v !== 'object') return undefined;
  return { name: String(v.name ?? 'Error'), message: String(v.message ?? ''), stack: String(v.stack ?? '') };
}
const jsonOrNull = (v) => (typeof v === 'string' ? v : null);

/**
 * The per-event entries of a batch from the runtime's runs ([count, outcome, status,
 * error_message, has_returned, error_name], see statusRuns in context/core.js). Entries of a run without
 * a returned event are one shared object. At most `bound` entries (the batch's JSON length:
 * no batch has more events than bytes), so a corrupted count cannot exhaust memory.
 */
function batchEntries(runs, returned, bound) {
  const entries = [];
  const events = Array.isArray(returned) ? returned : [];
  let next = 0;
  for (const run of runs) {
    if (!Array.isArray(run)) continue;
    const count = Number.isInteger(run[0]) && run[0] > 0 ? Math.min(run[0], bound - entries.length) : 0;
    const outcome = OUTCOMES.has(run[1]) ? run[1] : 'ERROR';
    const status = Number.isInteger(run[2]) ? run[2] : 500;
    const errorMessage = String(run[3] ?? '');
    const errorName = String(run[5] ?? '');
    const shared = { outcome, status, error_message: errorMessage, error_name: errorName, returned: null };
    for (let i = 0; i < count; i++) {
      entries.push(run[4] === true ? { ...shared, returned: jsonOrNull(events[next++]) } : shared);
    }
  }
  return entries;
}

function buildResult(state, inv, resultText, kind) {
  let r;
  try {
    r = JSON.parse(resultText);
  } catch {
    r = null;
  }
  if (!r || typeof r !== 'object') r = { outcome: 'ERROR', error: { name: 'Error', message: 'the function produced no result' } };
  let outcome = OUTCOMES.has(r.outcome) ? r.outcome : 'ERROR';
  let error = errorOf(r.error);
  if (inv.overflow && outcome === 'OK') {
    outcome = 'ERROR';
    error = { name: 'Error', message: inv.overflow, stack: '' };
  }
  const ok = outcome === 'OK';
  const result = {
    outcome, logs: inv.logs, logs_truncated: inv.logsDropped > 0, requests: inv.requests,
    duration_ms: Math.round((nowMs() - inv.start) * 1000) / 1000,
    events: ok ? inv.events : [], objects: ok ? inv.objects : [], returned: jsonOrNull(r.returned),
  };
  if (error) result.error = error;
  if (kind === 'batch' && Array.isArray(r.batch_runs)) result.batch = batchEntries(r.batch_runs, r.batch_returned, inv.batchBytes);
  let size = (result.returned || '').length;
  for (const s of result.events) size += s.length;
  for (const s of result.objects) size += s.length;
  for (const b of result.batch || []) size += (b.returned || '').length;
  if (size > state.limits.max_result_bytes) {
    Object.assign(result, { outcome: 'ERROR', events: [], objects: [], returned: null });
    result.error = { name: 'Error', message: `result too large: ${size} bytes exceeds the limit of ${state.limits.max_result_bytes} bytes`, stack: '' };
    if (result.batch) result.batch = result.batch.map((b) => ({ ...b, outcome: 'ERROR', status: 500, returned: null }));
  }
  if (inv.logsDropped > 0) result.logs.push(`… logs truncated (${inv.logsDropped} bytes dropped)`);
  return result;
}

// A promise rejected without a handler in user code must not take the worker down.
// (worker.js need not install its own handler for user code.)
process.on('unhandledRejection', (reason) => {
  if (!active) {
    process.stderr.write(`unhandled rejection outside any function: ${String(reason && reason.stack ? reason.stack : reason)}\n`);
    return;
  }
  const line = `Unhandled promise rejection: ${active.runtime.describe(reason)}`;
  const inv = invocations.getStore();
  addLog(active.state, inv && !inv.done ? inv : null, line);
});

/** The compiled context scripts, for ./codecache.js. */
const contextScripts = () => CONTEXT_SCRIPTS;

module.exports = { check, load, prepare, contextScripts };
