// In-context: fetch, Request, Response, Blob, FormData, AbortController/AbortSignal,
// EventTarget/Event. Bodies are buffered (no streams); they cross to the host as latin1 text.
// Only url/method/headers/body/redirect/signal are forwarded: a `dispatcher` option (or any
// other non-standard option) never reaches the host.
(function (host, g, lib) {
  'use strict';
  // Intrinsics as locals (a global name costs an interceptor call per use, see core.js).
  const { String, Number, Boolean, Symbol, Math, JSON, Map, Promise, Error, TypeError, RangeError, Date, Uint8Array } = g;
  const { call, def, Headers, URL, URLSearchParams, DOMException, utf8Encode, utf8Decode, utf8Latin1, bytesToLatin1, latin1ToBytes, toBytes } = lib;
  const jsonParse = JSON.parse;
  const jsonStringify = JSON.stringify;

  class Event {
    constructor(type, init) { this.type = String(type); this.bubbles = Boolean(init && init.bubbles); this.defaultPrevented = false; }
    preventDefault() { this.defaultPrevented = true; }
  }
  class EventTarget {
    #listeners = new Map();
    addEventListener(type, fn, opts) {
      if (typeof fn !== 'function' && !(fn && typeof fn.handleEvent === 'function')) return;
      const list = this.#listeners.get(type) || [];
      list.push({ fn, once: Boolean(opts && opts.once) });
      this.#listeners.set(type, list);
    }
    removeEventListener(type, fn) {
      const list = this.#listeners.get(type);
      if (list) this.#listeners.set(type, list.filter((l) => l.fn !== fn));
    }
    dispatchEvent(event) {
      const list = (this.#listeners.get(event.type) || []).slice();
      for (const l of list) {
        if (l.once) this.removeEventListener(event.type, l.fn);
        try { if (typeof l.fn === 'function') l.fn.call(this, event); else l.fn.handleEvent(event); } catch (e) { lib.uncaught(e); }
      }
      const prop = this['on' + event.type];
      if (typeof prop === 'function') { try { prop.call(this, event); } catch (e) { lib.uncaught(e); } }
      return !event.defaultPrevented;
    }
  }
  def('Event', Event);
  def('EventTarget', EventTarget);

  class AbortSignal extends EventTarget {
    #aborted = false; #reason = undefined;
    get aborted() { return this.#aborted; }
    get reason() { return this.#reason; }
    throwIfAborted() { if (this.#aborted) throw this.#reason; }
    static abort(reason) { const c = new AbortController(); c.abort(reason); return c.signal; }
    static timeout(ms) {
      const c = new AbortController();
      lib.timers.setTimeout(() => c.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms);
      return c.signal;
    }
    static any(signals) {
      const c = new AbortController();
      for (const s of signals) {
        if (s.aborted) { c.abort(s.reason); break; }
        s.addEventListener('abort', () => c.abort(s.reason), { once: true });
      }
      return c.signal;
    }
    static {
      lib.abortSignal = (s, reason) => {
        if (s.#aborted) return;
        s.#aborted = true;
        s.#reason = reason === undefined ? new DOMException('This operation was aborted', 'AbortError') : reason;
        s.dispatchEvent(new Event('abort'));
      };
    }
  }
  class AbortController {
    #signal = new AbortSignal();
    get signal() { return this.#signal; }
    abort(reason) { lib.abortSignal(this.#signal, reason); }
  }
  def('AbortSignal', AbortSignal);
  def('AbortController', AbortController);

  class Blob {
    #bytes; #type;
    constructor(parts = [], options = {}) {
      const chunks = [];
      for (const p of parts) {
        if (p instanceof Blob) chunks.push(p.#bytes);
        else chunks.push(toBytes(p) || utf8Encode(String(p)));
      }
      let n = 0;
      for (const c of chunks) n += c.length;
      this.#bytes = new Uint8Array(n);
      let o = 0;
      for (const c of chunks) { this.#bytes.set(c, o); o += c.length; }
      this.#type = options && options.type ? String(options.type).toLowerCase() : '';
    }
    get size() { return this.#bytes.length; }
    get type() { return this.#type; }
    async text() { return utf8Decode(this.#bytes); }
    async arrayBuffer() { return this.#bytes.slice().buffer; }
    async bytes() { return this.#bytes.slice(); }
    slice(start, end, type) { return new Blob([this.#bytes.slice(start, end)], { type }); }
    static { lib.blobBytes = (b) => b.#bytes; }
  }
  class File extends Blob {
    #name;
    constructor(parts, name, options) { super(parts, options); this.#name = String(name); this.lastModified = Date.now(); }
    get name() { return this.#name; }
  }
  def('Blob', Blob);
  def('File', File);

  class FormData {
    #list = [];
    #entry(name, value, filename) {
      if (value instanceof Blob) {
        const fname = filename !== undefined ? String(filename) : (value instanceof File ? value.name : 'blob');
        return [String(name), value instanceof File && filename === undefined ? value : new File([value], fname, { type: value.type })];
      }
      return [String(name), String(value)];
    }
    append(n, v, f) { this.#list.push(this.#entry(n, v, f)); }
    set(n, v, f) {
      const e = this.#entry(n, v, f);
      const i = this.#list.findIndex((x) => x[0] === e[0]);
      if (i < 0) this.#list.push(e);
      else { this.#list[i] = e; this.#list = this.#list.filter((x, j) => j <= i || x[0] !== e[0]); }
    }
    get(n) { const e = this.#list.find((x) => x[0] === String(n)); return e ? e[1] : null; }
    getAll(n) { return this.#list.filter((x) => x[0] === String(n)).map((x) => x[1]); }
    has(n) { return this.#list.some((x) => x[0] === String(n)); }
    delete(n) { this.#list = this.#list.filter((x) => x[0] !== String(n)); }
    *entries() { for (const e of this.#list) yield [e[0], e[1]]; }
    *keys() { for (const e of this.#list) yield e[0]; }
    *values() { for (const e of this.#list) yield e[1]; }
    forEach(fn, thisArg) { for (const [k, v] of this.#list) fn.call(thisArg, v, k, this); }
    [Symbol.iterator]() { return this.entries(); }
  }
  def('FormData', FormData);

  function multipart(form) {
    let boundary = '----fnboxFormBoundary';
    for (let i = 0; i < 16; i++) boundary += 'abcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(Math.random() * 36)];
    const esc = (s) => s.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22');
    let out = '';
    for (const [name, value] of form) {
      out += `--${boundary}\r\nContent-Disposition: form-data; name="${bytesToLatin1(utf8Encode(esc(name)))}"`;
      if (typeof value === 'string') out += `\r\n\r\n${bytesToLatin1(utf8Encode(value.replace(/\r(?!\n)|(?<!\r)\n/g, '\r\n')))}\r\n`;
      else out += `; filename="${bytesToLatin1(utf8Encode(esc(value.name)))}"\r\nContent-Type: ${value.type || 'application/octet-stream'}\r\n\r\n${bytesToLatin1(lib.blobBytes(value))}\r\n`;
    }
    out += `--${boundary}--\r\n`;
    return { latin1: out, type: `multipart/form-data; boundary=${boundary}` };
  }

  // -> {latin1, type} | null
  function extractBody(body) {
    if (body === undefined || body === null) return null;
    if (typeof body === 'string') return { latin1: utf8Latin1(body), type: 'text/plain;charset=UTF-8' };
    if (body instanceof URLSearchParams) return { latin1: body.toString(), type: 'application/x-www-form-urlencoded;charset=UTF-8' };
    if (body instanceof FormData) return multipart(body);
    if (body instanceof Blob) return { latin1: bytesToLatin1(lib.blobBytes(body)), type: body.type || null };
    const bytes = toBytes(body);
    if (bytes) return { latin1: bytesToLatin1(bytes), type: null };
    return { latin1: utf8Latin1(String(body)), type: 'text/plain;charset=UTF-8' };
  }

  const BODY = Symbol('body');
  class BodyMixin {
    get bodyUsed() { return this[BODY].used; }
    // Bodies are buffered: `body` is a minimal reader that yields the whole body as one chunk.
    get body() {
      const b = this[BODY];
      if (b.latin1 === null) return null;
      let done = false;
      const read = async () => {
        if (done || b.used) return { done: true, value: undefined };
        done = true;
        b.used = true;
        return { done: false, value: latin1ToBytes(b.latin1) };
      };
      return {
        locked: false,
        getReader: () => ({ read, releaseLock() {}, cancel: async () => { done = true; } }),
        async *[Symbol.asyncIterator]() { const r = await read(); if (!r.done) yield r.value; },
      };
    }
    #take() {
      const b = this[BODY];
      if (b.used) throw new TypeError('Body is unusable: Body has already been read');
      b.used = true;
      return b.latin1 === null ? '' : b.latin1;
    }
    async text() { return call(host.latin1ToUtf8, this.#take()); }
    async json() { return jsonParse(await this.text()); }
    async arrayBuffer() { return latin1ToBytes(this.#take()).buffer; }
    async bytes() { return latin1ToBytes(this.#take()); }
    async blob() { return new Blob([latin1ToBytes(this.#take())], { type: this.headers.get('content-type') || '' }); }
    // node-fetch v2 compatibility
    async buffer() { return g.Buffer.from(latin1ToBytes(this.#take())); }
  }

  const NORMALIZED = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH'];
  class Request extends BodyMixin {
    #url; #method; #headers; #redirect; #signal;
    constructor(input, init = {}) {
      super();
      init = init || {};
      const from = input instanceof Request ? input : null;
      this.#url = from ? from.url : new URL(String(input)).href;
      let method = init.method !== undefined ? String(init.method) : (from ? from.method : 'GET');
      if (NORMALIZED.includes(method.toUpperCase())) method = method.toUpperCase();
      if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(method)) throw new TypeError(`'${method}' is not a valid HTTP method.`);
      this.#method = method;
      this.#headers = new Headers(init.headers !== undefined ? init.headers : (from ? from.headers : undefined));
      this.#redirect = init.redirect !== undefined ? String(init.redirect) : (from ? from.redirect : 'follow');
      if (!['follow', 'error', 'manual'].includes(this.#redirect)) throw new TypeError(`invalid redirect mode ${this.#redirect}`);
      this.#signal = init.signal !== undefined ? init.signal : (from ? from.signal : null);
      let body = null;
      if (init.body !== undefined && init.body !== null) {
        if (method === 'GET' || method === 'HEAD') throw new TypeError('Request with GET/HEAD method cannot have body.');
        body = extractBody(init.body);
        if (body && body.type && !this.#headers.has('content-type')) this.#headers.set('content-type', body.type);
      } else if (from) {
        body = { latin1: from[BODY].latin1 };
      }
      this[BODY] = { latin1: body ? body.latin1 : null, used: false };
    }
    get url() { return this.#url; }
    get method() { return this.#method; }
    get headers() { return this.#headers; }
    get redirect() { return this.#redirect; }
    get signal() { return this.#signal; }
    clone() { return new Request(this); }
  }
  def('Request', Request);

  // makeResponse's sentinel init: user code cannot reach it, so only the host's answers take
  // the short path (no body extraction, headers kept as the host's list until first read).
  const HOST_INIT = {};
  class Response extends BodyMixin {
    #status; #statusText; #headers; #headerList = null; #url = ''; #redirected = false; #type = 'default';
    constructor(body = null, init = {}) {
      super();
      if (init === HOST_INIT) {
        const meta = body;
        this.#status = meta.status; this.#statusText = meta.statusText; this.#url = meta.url; this.#redirected = meta.redirected;
        this.#type = 'basic'; this.#headers = null; this.#headerList = meta.headers;
        return;
      }
      init = init || {};
      const status = init.status === undefined ? 200 : Number(init.status);
      if (!Number.isInteger(status) || status < 200 || status > 599) throw new RangeError(`init["status"] must be in the range of 200 to 599, inclusive.`);
      this.#status = status;
      this.#statusText = init.statusText === undefined ? '' : String(init.statusText);
      this.#headers = new Headers(init.headers);
      const b = extractBody(body);
      if (b && b.type && !this.#headers.has('content-type')) this.#headers.set('content-type', b.type);
      this[BODY] = { latin1: b ? b.latin1 : null, used: false };
    }
    static json(data, init = {}) {
      const text = jsonStringify(data);
      if (text === undefined) throw new TypeError('Value is not JSON serializable');
      const headers = new Headers(init && init.headers);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
      return new Response(text, { ...init, headers });
    }
    static error() { const r = new Response(null, { status: 200 }); r.#status = 0; r.#type = 'error'; return r; }
    static redirect(url, status = 302) {
      const r = new Response(null, { status: 200, headers: { location: new URL(String(url)).href } });
      r.#status = status;
      return r;
    }
    get status() { return this.#status; }
    get statusText() { return this.#statusText; }
    get ok() { return this.#status >= 200 && this.#status < 300; }
    get headers() {
      if (this.#headers === null) {
        this.#headers = new Headers(this.#headerList);
        this.#headerList = null;
      }
      return this.#headers;
    }
    get url() { return this.#url; }
    get redirected() { return this.#redirected; }
    get type() { return this.#type; }
    clone() {
      if (this.bodyUsed) throw new TypeError('Response.clone: Body has already been consumed.');
      const r = new Response(null, { status: 200, statusText: this.#statusText, headers: this.headers });
      r.#status = this.#status; r.#url = this.#url; r.#redirected = this.#redirected; r.#type = this.#type;
      r[BODY] = { latin1: this[BODY].latin1, used: false };
      return r;
    }
    static {
      lib.makeResponse = (meta, latin1) => {
        const r = new Response(meta, HOST_INIT);
        r[BODY] = { latin1, used: false };
        return r;
      };
    }
  }
  def('Response', Response);

  function fetchError(info) {
    const err = new TypeError(String(info.message || 'fetch failed'));
    if (info.cause) {
      const cause = new Error(String(info.cause.message));
      if (info.cause.code) cause.code = String(info.cause.code);
      if (info.cause.name && info.cause.name !== 'Error') cause.name = String(info.cause.name);
      err.cause = cause;
    }
    return err;
  }

  def('fetch', function fetch(input, init) {
    return new Promise((resolve, reject) => {
      const req = new Request(input, init);
      const signal = req.signal;
      if (signal && signal.aborted) { reject(signal.reason); return; }
      const spec = jsonStringify({ url: req.url, method: req.method, headers: lib.headerPairs(req.headers), redirect: req.redirect });
      const body = req[BODY].latin1;
      let settled = false;
      let onAbort = null;
      const id = call(host.fetch, spec, body === null ? null : body, (metaText, latin1) => {
        if (settled) return;
        settled = true;
        if (onAbort) signal.removeEventListener('abort', onAbort);
        try {
          const meta = jsonParse(metaText);
          if (meta.error) reject(fetchError(meta.error));
          else resolve(lib.makeResponse(meta, latin1));
        } catch (e) {
          reject(e);
        }
      });
      if (signal && typeof signal.addEventListener === 'function') {
        onAbort = () => {
          if (settled) return;
          settled = true;
          call(host.abortFetch, id);
          reject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  });
})
