'use strict';
// Host-side functions handed to the in-context bootstrap. Contract: arguments are checked to
// be primitives, results are primitives (strings/numbers/booleans) or values created in the
// context; a thrown host error is re-created in-context by `lib.call` (name + message only).

const { AsyncLocalStorage } = require('node:async_hooks');

const invocations = new AsyncLocalStorage();
const MESSAGE_LIMIT = 32 * 1024;
const TOO_LARGE = 'failed calling Tracking API: the message is too large and over the maximum 32KB limit';

// process.hrtime: the `performance` global lazily loads perf_hooks (~10 ms of start-up)
const nowMs = () => { const [s, ns] = process.hrtime(); return s * 1e3 + ns / 1e6; };
const str = (v) => (typeof v === 'string' ? v : String(v));

/** The invocation whose async context is running, or null once it finished. */
function current() {
  const inv = invocations.getStore();
  return inv && !inv.done ? inv : null;
}

function addLog(state, inv, text) {
  if (!inv) {
    state.onStrayLog(text);
    return;
  }
  const bytes = Buffer.byteLength(text) + 1;
  if (inv.logsDropped > 0 || inv.logBytes + bytes > state.limits.max_log_bytes) {
    inv.logsDropped += bytes;
    return;
  }
  inv.logBytes += bytes;
  inv.logs.push(text);
}

/** Host functions for one context. `state` = {limits, onStrayLog, timers, nextTimer}. */
function makeHost(state) {
  const timers = new Map();
  let nextTimer = 1;
  return {
    log(level, text) {
      addLog(state, current(), str(text));
    },
    emit(kind, json) {
      const inv = current();
      if (!inv) return '';
      const text = str(json);
      if (Buffer.byteLength(text) > MESSAGE_LIMIT) return TOO_LARGE;
      if (inv.events.length + inv.objects.length >= state.limits.max_events) {
        inv.overflow = `too many messages: at most ${state.limits.max_events} Segment.* calls per invocation`;
        return inv.overflow;
      }
      (kind === 'object' ? inv.objects : inv.events).push(text);
      return '';
    },
    finish(json) {
      const inv = invocations.getStore();
      if (inv && !inv.done) inv.finish(str(json));
    },
    setTimer(fn, ms, repeat) {
      if (typeof fn !== 'function') throw new TypeError('callback must be a function');
      const id = nextTimer++;
      const delay = Math.min(Math.max(Number(ms) || 0, 0), 0x7fffffff);
      const run = () => {
        if (!repeat) timers.delete(id);
        try { fn(); } catch { /* the in-context wrapper already reports */ }
      };
      timers.set(id, repeat ? setInterval(run, delay) : setTimeout(run, delay));
      return id;
    },
    clearTimer(id) {
      const t = timers.get(id);
      if (t !== undefined) {
        clearTimeout(t);
        timers.delete(id);
      }
    },
    utf8ToLatin1(s) {
      return Buffer.from(str(s), 'utf8').toString('latin1');
    },
    latin1ToUtf8(s) {
      return Buffer.from(str(s), 'latin1').toString('utf8');
    },
    decoderLabel(label) {
      return new TextDecoder(str(label)).encoding;
    },
    decode(label, latin1, fatal, ignoreBOM) {
      const d = new TextDecoder(str(label), { fatal: fatal === true, ignoreBOM: ignoreBOM === true });
      return d.decode(Buffer.from(str(latin1), 'latin1'));
    },
    btoa(s) {
      return Buffer.from(str(s), 'latin1').toString('base64');
    },
    atob(s) {
      return atob(str(s));
    },
    urlParse(url, base, hasBase) {
      const u = hasBase === true ? URL.parse(str(url), str(base)) : URL.parse(str(url));
      return u ? urlJson(u) : '';
    },
    urlSet(href, part, value) {
      const u = new URL(str(href));
      const p = str(part);
      if (!URL_PARTS.includes(p) || p === 'origin') throw new TypeError(`cannot set URL.${p}`);
      u[p] = str(value);
      return urlJson(u);
    },
  };
}

const URL_PARTS = ['href', 'origin', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash'];
function urlJson(u) {
  const o = {};
  for (const p of URL_PARTS) o[p] = u[p];
  return JSON.stringify(o);
}

module.exports = { makeHost, invocations, addLog, nowMs, TOO_LARGE };
