// In-context: URL, URLSearchParams, Headers, TextEncoder/TextDecoder, atob/btoa, DOMException,
// timers, queueMicrotask, structuredClone. Parsing that must match WHATWG exactly (URL) is
// delegated to the host over strings; the objects themselves live in this realm.
(function (host, g, lib) {
  'use strict';
  // Intrinsics as locals (a global name costs an interceptor call per use, see core.js).
  const { Object, Array, String, Number, Boolean, Symbol, Math, JSON, Map, Set, Promise, Error, TypeError, Date, RegExp, Uint8Array, ArrayBuffer, parseInt } = g;
  const { call, def } = lib;
  const jsonParse = JSON.parse;
  const fromCharCode = String.fromCharCode;

  class DOMException extends Error {
    constructor(message = '', name = 'Error') {
      super(message);
      Object.defineProperty(this, 'name', { value: String(name), configurable: true, writable: true });
    }
  }
  lib.DOMException = DOMException;
  def('DOMException', DOMException);

  // --- bytes <-> strings (bytes cross the realm boundary as latin1 strings) -------------
  function bytesToLatin1(u8) {
    let s = '';
    for (let i = 0; i < u8.length; i += 8192) s += fromCharCode.apply(null, u8.subarray(i, i + 8192));
    return s;
  }
  function latin1ToBytes(s) {
    const u8 = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) u8[i] = s.charCodeAt(i);
    return u8;
  }
  function toBytes(v) {
    if (v instanceof Uint8Array) return v;
    if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    if (v instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && v instanceof SharedArrayBuffer)) return new Uint8Array(v);
    return null;
  }
  const utf8Encode = (s) => latin1ToBytes(call(host.utf8ToLatin1, String(s)));
  const utf8Decode = (u8) => call(host.latin1ToUtf8, bytesToLatin1(u8));
  // A string's UTF-8 bytes as a latin1 string; ASCII text is its own (no host call).
  const ASCII = /^[\x00-\x7f]*$/;
  const utf8Latin1 = (s) => (ASCII.test(s) ? s : call(host.utf8ToLatin1, s));
  Object.assign(lib, { bytesToLatin1, latin1ToBytes, toBytes, utf8Encode, utf8Decode, utf8Latin1 });

  class TextEncoder {
    get encoding() { return 'utf-8'; }
    encode(input = '') { return utf8Encode(String(input)); }
    encodeInto(src, dest) {
      const bytes = utf8Encode(String(src));
      let n = Math.min(bytes.length, dest.length);
      while (n > 0 && n < bytes.length && (bytes[n] & 0xc0) === 0x80) n--;
      dest.set(bytes.subarray(0, n));
      return { read: utf8Decode(bytes.subarray(0, n)).length, written: n };
    }
  }
  class TextDecoder {
    #label; #fatal; #ignoreBOM;
    constructor(label = 'utf-8', options = {}) {
      this.#label = call(host.decoderLabel, String(label));
      this.#fatal = Boolean(options && options.fatal);
      this.#ignoreBOM = Boolean(options && options.ignoreBOM);
    }
    get encoding() { return this.#label; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    decode(input, _options) {
      if (input === undefined) return '';
      const bytes = toBytes(input);
      if (!bytes) throw new TypeError('The "input" argument must be an instance of ArrayBuffer or ArrayBufferView');
      return call(host.decode, this.#label, bytesToLatin1(bytes), this.#fatal, this.#ignoreBOM);
    }
  }
  def('TextEncoder', TextEncoder);
  def('TextDecoder', TextDecoder);

  def('btoa', function btoa(data) {
    if (arguments.length === 0) throw new TypeError('The "data" argument must be specified');
    const s = String(data);
    for (let i = 0; i < s.length; i++) {
      if (s.charCodeAt(i) > 255) throw new DOMException('Invalid character', 'InvalidCharacterError');
    }
    return call(host.btoa, s);
  });
  def('atob', function atob(data) {
    if (arguments.length === 0) throw new TypeError('The "data" argument must be specified');
    return call(host.atob, String(data));
  });

  // --- URLSearchParams -----------------------------------------------------------------
  function percentDecode(s) {
    if (!s.includes('%')) return s;
    const bytes = utf8Encode(s);
    const out = new Uint8Array(bytes.length);
    let n = 0;
    const hex = (c) => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (b === 37 && i + 2 < bytes.length && hex(bytes[i + 1]) && hex(bytes[i + 2])) {
        out[n++] = parseInt(fromCharCode(bytes[i + 1], bytes[i + 2]), 16);
        i += 2;
      } else out[n++] = b;
    }
    return utf8Decode(out.subarray(0, n));
  }
  function formEncode(s) {
    const bytes = utf8Encode(s);
    let out = '';
    for (const b of bytes) {
      if ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2a || b === 0x2d || b === 0x2e || b === 0x5f) out += fromCharCode(b);
      else if (b === 0x20) out += '+';
      else out += '%' + (b < 16 ? '0' : '') + b.toString(16).toUpperCase();
    }
    return out;
  }
  function parseForm(s) {
    const list = [];
    for (const part of s.split('&')) {
      if (!part) continue;
      const eq = part.indexOf('=');
      const k = eq < 0 ? part : part.slice(0, eq);
      const v = eq < 0 ? '' : part.slice(eq + 1);
      list.push([percentDecode(k.replace(/\+/g, ' ')), percentDecode(v.replace(/\+/g, ' '))]);
    }
    return list;
  }
  const SP_UPDATE = Symbol('update');
  class URLSearchParams {
    #list = [];
    #onChange = null;
    constructor(init = '') {
      if (init instanceof URLSearchParams) this.#list = init.#list.map((p) => [p[0], p[1]]);
      else if (init !== null && typeof init === 'object' && typeof init[Symbol.iterator] === 'function') {
        for (const pair of init) {
          const p = Array.from(pair);
          if (p.length !== 2) throw new TypeError('Each query pair must be an iterable [name, value] tuple');
          this.#list.push([String(p[0]), String(p[1])]);
        }
      } else if (init !== null && typeof init === 'object') {
        for (const k of Object.keys(init)) this.#list.push([k, String(init[k])]);
      } else {
        let s = String(init);
        if (s.startsWith('?')) s = s.slice(1);
        this.#list = parseForm(s);
      }
    }
    [SP_UPDATE](search, onChange) {
      this.#list = parseForm(search.startsWith('?') ? search.slice(1) : search);
      if (onChange) this.#onChange = onChange;
    }
    #changed() { if (this.#onChange) this.#onChange(this.toString()); }
    get size() { return this.#list.length; }
    append(k, v) { this.#list.push([String(k), String(v)]); this.#changed(); }
    delete(k, v) {
      k = String(k);
      this.#list = this.#list.filter((p) => !(p[0] === k && (v === undefined || p[1] === String(v))));
      this.#changed();
    }
    get(k) { k = String(k); const p = this.#list.find((x) => x[0] === k); return p ? p[1] : null; }
    getAll(k) { k = String(k); return this.#list.filter((x) => x[0] === k).map((x) => x[1]); }
    has(k, v) { k = String(k); return this.#list.some((p) => p[0] === k && (v === undefined || p[1] === String(v))); }
    set(k, v) {
      k = String(k); v = String(v);
      const i = this.#list.findIndex((p) => p[0] === k);
      if (i < 0) this.#list.push([k, v]);
      else { this.#list[i][1] = v; this.#list = this.#list.filter((p, j) => j <= i || p[0] !== k); }
      this.#changed();
    }
    sort() { this.#list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); this.#changed(); }
    forEach(fn, thisArg) { for (const [k, v] of this.#list) fn.call(thisArg, v, k, this); }
    *entries() { for (const p of this.#list) yield [p[0], p[1]]; }
    *keys() { for (const p of this.#list) yield p[0]; }
    *values() { for (const p of this.#list) yield p[1]; }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return this.#list.map((p) => `${formEncode(p[0])}=${formEncode(p[1])}`).join('&'); }
    get [Symbol.toStringTag]() { return 'URLSearchParams'; }
  }
  def('URLSearchParams', URLSearchParams);
  lib.URLSearchParams = URLSearchParams;

  // --- URL (parsed by the host's WHATWG parser, over strings) -------------------------
  const URL_PARTS = ['href', 'origin', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash'];
  // Parsed absolute URLs, by their text: a function fetching the same URL on every call parses
  // it once per worker. The parts object is never mutated (a setter parses anew).
  const parsed = new Map();
  function parseURL(url, base) {
    const text = String(url);
    if (base === undefined) {
      const hit = parsed.get(text);
      if (hit !== undefined) return hit;
    }
    const r = call(host.urlParse, text, base === undefined ? '' : String(base), base !== undefined);
    const c = r ? jsonParse(r) : null;
    if (c !== null && base === undefined) {
      if (parsed.size >= 256) parsed.clear();
      parsed.set(text, c);
    }
    return c;
  }
  class URL {
    #c; #sp = null;
    constructor(url, base) {
      if (arguments.length === 0) throw new TypeError('The "url" argument must be specified');
      const c = parseURL(url, base);
      if (!c) {
        const err = new TypeError('Invalid URL');
        err.code = 'ERR_INVALID_URL';
        err.input = String(url);
        throw err;
      }
      this.#c = c;
    }
    static canParse(url, base) { return parseURL(url, base) !== null; }
    static parse(url, base) { try { return new URL(url, base); } catch (_) { return null; } }
    #set(part, value) {
      this.#c = jsonParse(call(host.urlSet, this.#c.href, part, String(value)));
      if (this.#sp && (part === 'search' || part === 'href')) this.#sp[SP_UPDATE](this.#c.search);
    }
    get searchParams() {
      if (!this.#sp) {
        this.#sp = new URLSearchParams();
        this.#sp[SP_UPDATE](this.#c.search, (s) => {
          this.#c = jsonParse(call(host.urlSet, this.#c.href, 'search', s));
          if (s === '') this.#c = jsonParse(call(host.urlSet, this.#c.href, 'search', ''));
        });
      }
      return this.#sp;
    }
    toString() { return this.#c.href; }
    toJSON() { return this.#c.href; }
    get [Symbol.toStringTag]() { return 'URL'; }
    static {
      lib.urlGet = (u, part) => u.#c[part];
      lib.urlSet = (u, part, v) => u.#set(part, v);
    }
  }
  for (const part of URL_PARTS) {
    Object.defineProperty(URL.prototype, part, {
      enumerable: true, configurable: true,
      get() { return lib.urlGet(this, part); },
      set: part === 'origin' ? undefined : function (v) { lib.urlSet(this, part, v); },
    });
  }
  def('URL', URL);
  lib.URL = URL;
  lib.inspectTag = null;

  // --- Headers ----------------------------------------------------------------------------
  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const EDGE_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;
  const INVALID_VALUE = /[\0\r\n]/;
  function normValue(v) {
    let s = String(v);
    // The trimming replace only for a value with a control or space character at an end.
    const last = s.length - 1;
    if (last >= 0 && (s.charCodeAt(0) <= 32 || s.charCodeAt(last) <= 32)) s = s.replace(EDGE_WHITESPACE, '');
    if (INVALID_VALUE.test(s)) throw new TypeError(`Invalid header value: ${JSON.stringify(s)}`);
    return s;
  }
  // Valid names seen, by their text, to their lower case: the same few names come on every
  // request (a source's request headers, a fetch's), checked and lowered once per worker.
  const names = new Map();
  function normName(n) {
    const s = String(n);
    const known = names.get(s);
    if (known !== undefined) return known;
    if (!TOKEN.test(s)) throw new TypeError(`Header name must be a valid HTTP token ["${s}"]`);
    const lower = s.toLowerCase();
    if (names.size >= 256) names.clear();
    names.set(s, lower);
    return lower;
  }
  class Headers {
    #map = new Map();
    constructor(init) {
      if (init === undefined || init === null) return;
      if (init instanceof Headers) { for (const [k, vs] of init.#map) this.#map.set(k, vs.slice()); return; }
      if (typeof init !== 'object') throw new TypeError('Headers init must be an object or an iterable');
      if (typeof init[Symbol.iterator] === 'function') {
        for (const pair of init) {
          const p = Array.from(pair);
          if (p.length !== 2) throw new TypeError('Header pairs must contain exactly two items');
          this.append(p[0], p[1]);
        }
      } else {
        for (const k of Object.keys(init)) this.append(k, init[k]);
      }
    }
    append(k, v) { const n = normName(k); const val = normValue(v); const vs = this.#map.get(n); if (vs) vs.push(val); else this.#map.set(n, [val]); }
    set(k, v) { this.#map.set(normName(k), [normValue(v)]); }
    delete(k) { this.#map.delete(normName(k)); }
    has(k) { return this.#map.has(normName(k)); }
    get(k) { const vs = this.#map.get(normName(k)); return vs ? vs.join(', ') : null; }
    getSetCookie() { return (this.#map.get('set-cookie') || []).slice(); }
    forEach(fn, thisArg) { for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this); }
    *entries() {
      const names = Array.from(this.#map.keys()).sort();
      for (const n of names) {
        if (n === 'set-cookie') for (const v of this.#map.get(n)) yield [n, v];
        else yield [n, this.#map.get(n).join(', ')];
      }
    }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return 'Headers'; }
    // node-fetch v2 compatibility (Segment's fetch): raw() gives arrays per name.
    raw() { const o = {}; for (const [k, vs] of this.#map) o[k] = vs.slice(); return o; }
    // What entries() yields, as an array, without a generator (fetch sends one per call).
    static {
      lib.headerPairs = (h) => {
        const map = h.#map;
        const out = [];
        if (map.size === 0) return out;
        const names = map.size === 1 ? [map.keys().next().value] : Array.from(map.keys()).sort();
        for (let i = 0; i < names.length; i++) {
          const n = names[i];
          const vs = map.get(n);
          if (n === 'set-cookie') for (let j = 0; j < vs.length; j++) out.push([n, vs[j]]);
          else out.push([n, vs.length === 1 ? vs[0] : vs.join(', ')]);
        }
        return out;
      };
    }
  }
  def('Headers', Headers);
  lib.Headers = Headers;

  // --- timers -----------------------------------------------------------------------------
  const hostSetTimer = host.setTimer;
  const hostClearTimer = host.clearTimer;
  function guarded(fn, args) {
    return function () {
      try {
        const r = fn(...args);
        if (r && typeof r.then === 'function') r.then(undefined, (e) => lib.uncaught(e));
      } catch (e) {
        lib.uncaught(e);
      }
    };
  }
  lib.uncaught = (e) => { call(host.log, 'error', 'Uncaught ' + lib.format(e)); };
  function timer(repeat) {
    return function (fn, ms, ...args) {
      if (typeof fn !== 'function') throw new TypeError('The "callback" argument must be of type function');
      const delay = Number(ms);
      return call(hostSetTimer, guarded(fn, args), Number.isFinite(delay) && delay > 0 ? delay : 0, repeat);
    };
  }
  const clear = function (id) { if (typeof id === 'number') call(hostClearTimer, id); };
  def('setTimeout', timer(false));
  def('setInterval', timer(true));
  def('setImmediate', function setImmediate(fn, ...args) { return timer(false)(fn, 0, ...args); });
  def('clearTimeout', clear);
  def('clearInterval', clear);
  def('clearImmediate', clear);
  def('queueMicrotask', function queueMicrotask(fn) {
    if (typeof fn !== 'function') throw new TypeError('The "callback" argument must be of type function');
    Promise.resolve().then(guarded(fn, []));
  });
  lib.timers = { setTimeout: g.setTimeout, setInterval: g.setInterval, setImmediate: g.setImmediate, clearTimeout: clear, clearInterval: clear, clearImmediate: clear };

  def('structuredClone', function structuredClone(value) {
    const seen = new Map();
    function clone(v) {
      if (v === null || typeof v !== 'object') {
        if (typeof v === 'function' || typeof v === 'symbol') throw new DOMException(`${String(v)} could not be cloned.`, 'DataCloneError');
        return v;
      }
      if (seen.has(v)) return seen.get(v);
      let out;
      if (v instanceof Date) out = new Date(v.getTime());
      else if (v instanceof RegExp) out = new RegExp(v.source, v.flags);
      else if (v instanceof Map) { out = new Map(); seen.set(v, out); for (const [k, x] of v) out.set(clone(k), clone(x)); return out; }
      else if (v instanceof Set) { out = new Set(); seen.set(v, out); for (const x of v) out.add(clone(x)); return out; }
      else if (v instanceof ArrayBuffer) out = v.slice(0);
      else if (ArrayBuffer.isView(v)) out = new v.constructor(v);
      else if (Array.isArray(v)) { out = []; seen.set(v, out); for (let i = 0; i < v.length; i++) out[i] = clone(v[i]); return out; }
      else { out = {}; seen.set(v, out); for (const k of Object.keys(v)) out[k] = clone(v[k]); return out; }
      seen.set(v, out);
      return out;
    }
    return clone(value);
  });
})
