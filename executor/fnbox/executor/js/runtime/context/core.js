// In-context: error classes, console, Segment.*, the source request object, handler
// dispatch and result building. Everything here is created inside the user's realm; host
// functions are only reached through `lib.call`, which takes and returns primitives.
(function (host, g, lib) {
  'use strict';
  // The intrinsics this script uses, as locals: in a vm context every use of a global name
  // goes through node's named-property interceptor on the contextified global (a C++ call,
  // ~0.1-0.3 us); a local is a slot load. Taken before user code runs.
  const { Object, Array, String, Number, Symbol, Math, JSON, Map, Error, TypeError, RangeError, SyntaxError, Date } = g;
  const jsonParse = JSON.parse;
  const jsonStringify = JSON.stringify;
  const defineProperty = Object.defineProperty;
  const HANDLERS = {
    identify: 'onIdentify', track: 'onTrack', page: 'onPage', screen: 'onScreen',
    group: 'onGroup', alias: 'onAlias', delete: 'onDelete',
  };
  const HANDLER_NAMES = ['onIdentify', 'onTrack', 'onPage', 'onScreen', 'onGroup', 'onAlias', 'onDelete', 'onBatch', 'onRequest'];

  // A host function may still throw a host-realm error (e.g. a stack overflow on entry);
  // never let that object reach user code.
  function call(fn, a, b, c, d) {
    try {
      return fn(a, b, c, d);
    } catch (e) {
      throw lib.localError(e);
    }
  }
  function localError(e) {
    if (e instanceof Error) return e;
    let name = 'Error';
    let message = 'internal error';
    try {
      name = String(e && e.name);
      message = String(e && e.message);
    } catch (_) { /* keep defaults */ }
    const Ctor = { TypeError, RangeError, SyntaxError }[name] || Error;
    const err = new Ctor(message);
    if (!(Ctor === TypeError || Ctor === RangeError || Ctor === SyntaxError || name === 'Error')) err.name = name;
    return err;
  }
  lib.call = call;
  lib.makeError = (name, message) => {
    const Ctor = { TypeError, RangeError, SyntaxError }[name] || Error;
    return new Ctor(String(message));
  };
  lib.localError = localError;

  function def(name, value) {
    defineProperty(g, name, { value, writable: true, configurable: true, enumerable: false });
  }
  // Getter that replaces itself with the value on first access (keeps start-up cheap).
  function lazy(name, load) {
    defineProperty(g, name, {
      configurable: true,
      enumerable: false,
      get() {
        const value = load();
        def(name, value);
        return value;
      },
      set(value) { def(name, value); },
    });
  }
  lib.def = def;
  lib.lazy = lazy;

  // --- Errors -------------------------------------------------------------------------
  class EventNotSupported extends Error { constructor(m) { super(m); this.name = 'EventNotSupported'; } }
  class InvalidEventPayload extends Error { constructor(m) { super(m); this.name = 'InvalidEventPayload'; } }
  class ValidationError extends Error { constructor(m) { super(m); this.name = 'ValidationError'; } }
  class RetryError extends Error { constructor(m) { super(m); this.name = 'RetryError'; } }
  class DropEvent extends Error { constructor(m) { super(m); this.name = 'DropEvent'; } }
  for (const C of [EventNotSupported, InvalidEventPayload, ValidationError, RetryError, DropEvent]) def(C.name, C);
  lib.errors = { EventNotSupported, InvalidEventPayload, ValidationError, RetryError, DropEvent };

  // --- console --------------------------------------------------------------------------
  const hostLog = host.log;
  function emitLog(level, text) { call(hostLog, level, String(text)); }
  const counts = new Map();
  const timers = new Map();
  let groupIndent = '';
  function out(level) {
    return function (...args) {
      let text = lib.format(...args);
      if (groupIndent) text = groupIndent + text.split('\n').join('\n' + groupIndent);
      emitLog(level, text);
    };
  }
  const console = {
    log: out('log'), info: out('info'), warn: out('warn'), error: out('error'), debug: out('debug'),
    trace(...args) {
      const stack = String(new Error().stack).split('\n').slice(2).join('\n');
      emitLog('error', `Trace${args.length ? ': ' + lib.format(...args) : ''}\n${stack}`);
    },
    dir(v, opts) { emitLog('log', lib.inspect(v, opts)); },
    table(v) { emitLog('log', lib.inspect(v)); },
    assert(ok, ...args) { if (!ok) emitLog('error', 'Assertion failed' + (args.length ? ': ' + lib.format(...args) : '')); },
    count(label = 'default') { const n = (counts.get(label) || 0) + 1; counts.set(label, n); emitLog('log', `${label}: ${n}`); },
    countReset(label = 'default') { counts.delete(label); },
    time(label = 'default') { timers.set(label, Date.now()); },
    timeLog(label = 'default', ...args) {
      if (timers.has(label)) emitLog('log', `${label}: ${Date.now() - timers.get(label)}ms${args.length ? ' ' + lib.format(...args) : ''}`);
    },
    timeEnd(label = 'default') {
      if (timers.has(label)) { emitLog('log', `${label}: ${Date.now() - timers.get(label)}ms`); timers.delete(label); }
    },
    group(...args) { if (args.length) out('log')(...args); groupIndent += '  '; },
    groupEnd() { groupIndent = groupIndent.slice(2); },
  };
  console.groupCollapsed = console.group;
  def('console', console);

  // --- Segment.* ------------------------------------------------------------------------
  const hostEmit = host.emit;
  function setAttribute(obj, attr, value) { if (value) obj[attr] = value; }
  function assertExists(d, attr) {
    if (typeof d[attr] === 'undefined' || d[attr] === '') throw new ValidationError(`${attr} is required but not defined`);
  }
  function common(d) {
    if (!d.userId && !d.anonymousId) throw new ValidationError('One of userId,anonymousId is required but not defined');
    const res = {};
    for (const k of ['userId', 'anonymousId', 'context', 'integrations', 'messageId', 'sentAt', 'timestamp']) setAttribute(res, k, d[k]);
    return res;
  }
  function emit(kind, obj) {
    const text = jsonStringify(obj);
    const problem = call(hostEmit, kind, typeof text === 'string' ? text : 'null');
    if (problem) throw new Error(problem);
    return obj;
  }
  function message(type, d, fields, required) {
    if (d === null || typeof d !== 'object') d = {};
    for (const r of required) assertExists(d, r);
    const obj = { type };
    for (const f of fields) setAttribute(obj, f, d[f]);
    return emit('event', Object.assign(obj, common(d)));
  }
  const Segment = {
    identify(d) { return message('identify', d, ['traits'], []); },
    track(d) {
      if (d === null || typeof d !== 'object') d = {};
      assertExists(d, 'event');
      const obj = { type: 'track', event: d.event };
      setAttribute(obj, 'properties', d.properties);
      return emit('event', Object.assign(obj, common(d)));
    },
    page(d) { return message('page', d, ['name', 'properties'], []); },
    screen(d) { return message('screen', d, ['name', 'properties'], []); },
    group(d) {
      if (d === null || typeof d !== 'object') d = {};
      assertExists(d, 'groupId');
      const obj = { type: 'group', groupId: d.groupId };
      setAttribute(obj, 'traits', d.traits);
      return emit('event', Object.assign(obj, common(d)));
    },
    alias(d) { return message('alias', d, ['previousId'], ['previousId']); },
    set(d) {
      if (d === null || typeof d !== 'object') d = {};
      assertExists(d, 'collection');
      assertExists(d, 'id');
      const obj = { collection: d.collection, id: d.id };
      setAttribute(obj, 'properties', d.properties);
      return emit('object', obj);
    },
  };
  def('Segment', Segment);

  // --- source request ---------------------------------------------------------------------
  const BODY = Symbol('body');
  class ServerRequest {
    constructor(text, headers, url, method) {
      this[BODY] = { text, json: undefined, parsed: false };
      defineProperty(this, 'headers', { value: headers, enumerable: true });
      defineProperty(this, 'url', { value: url, enumerable: true });
      defineProperty(this, 'method', { value: method, enumerable: false });
    }
    json() {
      const body = this[BODY];
      if (!body.parsed) {
        const type = String(this.headers.get('content-type') || '').toLowerCase();
        if (type.startsWith('application/x-www-form-urlencoded')) {
          // A form body is exposed as an object of its fields; a repeated field is an array.
          const fields = {};
          for (const [k, v] of new lib.URLSearchParams(body.text)) {
            if (Object.prototype.hasOwnProperty.call(fields, k)) {
              fields[k] = Array.isArray(fields[k]) ? fields[k].concat(v) : [fields[k], v];
            } else fields[k] = v;
          }
          body.json = fields;
        } else {
          body.json = jsonParse(body.text);
        }
        body.parsed = true;
      }
      return body.json;
    }
    text() { return this[BODY].text; }
  }
  def('ServerRequest', ServerRequest);

  // --- invocation -------------------------------------------------------------------------
  let handlers = null;   // getter over the user's handler bindings
  let fnType = 'DESTINATION';
  const isInsert = () => fnType === 'INSERT_DESTINATION' || fnType === 'INSERT_SOURCE';

  function errorInfo(e) {
    if (e instanceof Error || (e !== null && typeof e === 'object')) {
      let name = 'Error'; let msg = ''; let stack = '';
      try { name = String(e.name === undefined ? 'Error' : e.name); } catch (_) { /* keep */ }
      try { msg = String(e.message === undefined ? '' : e.message); } catch (_) { /* keep */ }
      try { stack = typeof e.stack === 'string' ? lib.cleanStack(e.stack) : ''; } catch (_) { /* keep */ }
      if (!(e instanceof Error) && !msg) { try { msg = lib.inspect(e); } catch (_) { /* keep */ } }
      return { name, message: msg, stack };
    }
    let msg;
    try { msg = typeof e === 'string' ? e : lib.inspect(e); } catch (_) { msg = 'non-error value thrown'; }
    return { name: 'Error', message: msg, stack: '' };
  }
  // Drop the runtime's own frames: in-context bootstrap frames anywhere, and everything from
  // the first host frame down (the host call stack is always at the bottom).
  lib.cleanStack = (stack) => {
    const out = [];
    for (const l of stack.split('\n')) {
      if (/^\s+at /.test(l) && (l.includes('node:') || (lib.hostDir && l.includes(lib.hostDir)))) break;
      if (!l.includes('fnbox:runtime/')) out.push(l);
    }
    return out.join('\n');
  };
  lib.errorInfo = errorInfo;

  function outcomeOf(e) {
    const n = (() => { try { return e && e.name; } catch (_) { return ''; } })();
    if (e instanceof EventNotSupported || n === 'EventNotSupported') return 'EVENT_NOT_SUPPORTED';
    if (e instanceof InvalidEventPayload || n === 'InvalidEventPayload') return 'INVALID_EVENT_PAYLOAD';
    if (e instanceof ValidationError || n === 'ValidationError') return 'VALIDATION_ERROR';
    if (e instanceof RetryError || n === 'RetryError') return 'RETRY';
    if (isInsert() && (e instanceof DropEvent || n === 'DropEvent')) return 'DROP';
    return 'ERROR';
  }
  const NOT_ONE_EVENT = 'an insert function must return one event (an object), or nothing to drop it';
  const statusOf = (outcome) => (outcome === 'OK' ? 200 : outcome === 'RETRY' ? 500 : 400);
  const stringifyOrNull = (v) => { const s = v === undefined ? undefined : jsonStringify(v); return typeof s === 'string' ? s : null; };

  function getHandler(name) {
    const h = handlers ? handlers()[name] : undefined;
    return typeof h === 'function' ? h : null;
  }

  // One event through its single-event handler -> {outcome, error?, returned}
  async function runEvent(event, settings) {
    try {
      const type = event !== null && typeof event === 'object' ? event.type : undefined;
      const name = typeof type === 'string' && Object.prototype.hasOwnProperty.call(HANDLERS, type) ? HANDLERS[type] : null;
      if (!name) return { outcome: 'OK', returned: isInsert() ? stringifyOrNull(event) : null };
      const fn = getHandler(name);
      if (!fn) throw new EventNotSupported(`${type} not supported`);
      const value = await fn(event, settings);
      if (!isInsert()) return { outcome: 'OK', returned: null };
      if (value === undefined || value === null) return { outcome: 'DROP', returned: null };
      // One event in, at most one event out (Segment): an array or a primitive is not an event.
      if (typeof value !== 'object' || Array.isArray(value)) throw new TypeError(NOT_ONE_EVENT);
      return { outcome: 'OK', returned: stringifyOrNull(value) };
    } catch (e) {
      return { outcome: outcomeOf(e), error: errorInfo(e), returned: null };
    }
  }

  // A batch's per-event statuses as runs of equal consecutive entries
  // [count, outcome, status, error_message, has_returned, error_name], and the returned events in order:
  // 200 OK entries cross to the host as one run, not 200 objects serialised and parsed again.
  function statusRuns() {
    const runs = [];
    const returned = [];
    let last = null;
    return {
      add(outcome, status, message, ret, name = '') {
        const has = typeof ret === 'string';
        if (has) returned[returned.length] = ret;
        if (last !== null && last[1] === outcome && last[2] === status && last[3] === message && last[4] === has && last[5] === name) last[0] += 1;
        else runs[runs.length] = last = [1, outcome, status, message, has, name];
      },
      result(outcome, error) {
        const r = { outcome, batch_runs: runs, batch_returned: returned };
        if (error) r.error = error;
        return r;
      },
    };
  }

  async function runBatch(events, settings) {
    if (!Array.isArray(events)) throw new InvalidEventPayload('a batch must be a JSON array of events');
    const onBatch = fnType === 'DESTINATION' || fnType === 'INSERT_DESTINATION' ? getHandler('onBatch') : null;
    const out = statusRuns();
    if (!onBatch) {
      for (const event of events) {
        const r = await runEvent(event, settings);
        out.add(r.outcome, statusOf(r.outcome), r.error ? r.error.message : '', r.returned, r.error ? r.error.name : '');
      }
      return out.result('OK');
    }
    let value;
    try {
      value = await onBatch(events, settings);
    } catch (e) {
      const outcome = outcomeOf(e);
      const error = errorInfo(e);
      for (let i = 0; i < events.length; i++) out.add(outcome, statusOf(outcome), error.message, null, error.name);
      return out.result(outcome, error);
    }
    const list = Array.isArray(value) ? value : [];
    for (let i = 0; i < events.length; i++) {
      const item = list[i];
      if (isInsert()) {
        if (item === undefined || item === null) out.add('DROP', 400, 'filtered at insert function', null);
        else if (typeof item !== 'object' || Array.isArray(item)) out.add('ERROR', 400, NOT_ONE_EVENT, null);
        else out.add('OK', 200, '', stringifyOrNull(item));
        continue;
      }
      const status = item && typeof item === 'object' && Number.isFinite(Number(item.status)) && item.status !== null ? Math.trunc(Number(item.status)) : 200;
      const msg = item && typeof item === 'object' && item.errormessage !== undefined && item.errormessage !== null ? String(item.errormessage) : '';
      const outcome = status >= 200 && status < 300 ? 'OK' : (status >= 500 || status === 429 ? 'RETRY' : 'ERROR');
      out.add(outcome, status, msg, null);
    }
    return out.result('OK');
  }

  async function runRequest(metaText, bodyText, settings) {
    const meta = jsonParse(metaText);
    const headers = new lib.Headers();
    const raw = meta && meta.headers && typeof meta.headers === 'object' ? meta.headers : {};
    for (const k of Object.keys(raw)) {
      const v = raw[k];
      if (Array.isArray(v)) for (const x of v) headers.append(k, String(x));
      else if (v !== undefined && v !== null) headers.append(k, String(v));
    }
    const url = new lib.URL(meta && meta.url ? String(meta.url) : 'https://fn.segmentapis.com/');
    const request = new ServerRequest(bodyText, headers, url, meta && meta.method ? String(meta.method) : 'POST');
    const fn = getHandler('onRequest');
    if (!fn) throw new EventNotSupported('request not supported');
    await fn(request, settings);
    return { outcome: 'OK', returned: null };
  }

  async function invoke(kind, a, b, c) {
    let result;
    try {
      if (kind === 'request') {
        result = await runRequest(a, b, jsonParse(c));
      } else {
        let payload;
        try { payload = jsonParse(a); } catch (e) { throw new InvalidEventPayload(`invalid event JSON: ${e.message}`); }
        const settings = jsonParse(b);
        result = kind === 'batch' ? await runBatch(payload, settings) : await runEvent(payload, settings);
      }
    } catch (e) {
      result = { outcome: outcomeOf(e), error: errorInfo(e), returned: null };
    }
    let text;
    try { text = jsonStringify(result); } catch (e) { text = jsonStringify({ outcome: 'ERROR', error: errorInfo(e) }); }
    call(host.finish, text);
  }

  lib.runtime = {
    // Runs the user's top level; returns null or an error JSON string.
    define(wrapper, type) {
      fnType = type;
      const holder = {};
      try {
        wrapper.call(g, holder);
        handlers = holder.get;
        return null;
      } catch (e) {
        handlers = holder.get || null;
        return jsonStringify(errorInfo(e));
      }
    },
    invoke(kind, a, b, c) { invoke(kind, a, b, c); },
    // The handlers the top level defined, comma-separated (a primitive for the host).
    definedHandlers() {
      let names = '';
      for (let i = 0; i < HANDLER_NAMES.length; i++) {
        if (getHandler(HANDLER_NAMES[i])) names += (names ? ',' : '') + HANDLER_NAMES[i];
      }
      return names;
    },
    describe(v) { try { return lib.format(v); } catch (_) { return 'unprintable value'; } },
    handlerNames: HANDLER_NAMES.join(', '),
  };
})
