'use strict';
// Host side of the user's fetch: runs the request through the egress-guarded dispatcher,
// records it on the current invocation, and answers the in-context callback with strings only
// (metadata as JSON, the body as a latin1 string).
//
// http(s) requests go straight to a dispatcher (dispatch() with a small handler): ./h1.js for
// plain http: without a proxy (~30 µs less worker CPU per request than undici's Agent under
// the e2e bench), undici's for https: and through a proxy; either rather than through the
// host's WHATWG fetch: the in-context fetch already built the Request and buffers
// the body, and the host fetch's Request/Response/Headers/web streams cost ~4x the CPU of
// the HTTP exchange itself (bench e2e). What fetch adds on top of the dispatcher is done here
// the way undici's fetch does it: its default request headers, redirects (every hop
// dispatched again, so re-checked by the egress guard), content decoding, "fetch failed"
// errors with their cause. Anything else (data: URLs, credentials in the URL, forbidden
// methods) still goes through the host fetch.

const { invocations, nowMs } = require('./host.js');

const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
const METHODS_WITHOUT_BODY = new Set(['GET', 'HEAD']);
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);
const REQUEST_BODY_HEADERS = new Set(['content-encoding', 'content-language', 'content-location', 'content-type', 'content-length']);
const CROSS_ORIGIN_DROPPED = new Set(['authorization', 'proxy-authorization', 'cookie', 'host']);
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);
const MAX_REDIRECTS = 20;
// The fetch standard's "bad ports", refused by fetch on every hop.
const BAD_PORTS = new Set([
  '1', '7', '9', '11', '13', '15', '17', '19', '20', '21', '22', '23', '25', '37', '42', '43', '53', '69', '77', '79',
  '87', '95', '101', '102', '103', '104', '109', '110', '111', '113', '115', '117', '119', '123', '135', '137',
  '139', '143', '161', '179', '389', '427', '465', '512', '513', '514', '515', '526', '530', '531', '532',
  '540', '548', '554', '556', '563', '587', '601', '636', '989', '990', '993', '995', '1719', '1720', '1723',
  '2049', '3659', '4045', '4190', '5060', '5061', '6000', '6566', '6665', '6666', '6667', '6668', '6669', '6679',
  '6697', '10080',
]);
const MAX_CONTENT_ENCODINGS = 5;

async function readCapped(res) {
  if (!res.body) return Buffer.alloc(0);
  const chunks = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) throw new Error(`response body larger than ${MAX_RESPONSE_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const tooLarge = () => new Error(`response body larger than ${MAX_RESPONSE_BYTES} bytes`);

// A failure before the response (fetch's network error) and one while reading its body.
function fetchFailed(cause, message = 'fetch failed') {
  return Object.assign(new TypeError(message), { cause: cause instanceof Error ? cause : new Error(String(cause)) });
}

function abortError() {
  return new DOMException('This operation was aborted', 'AbortError');
}

function describe(err) {
  const cause = err && err.cause;
  const c = cause && typeof cause === 'object' ? cause : null;
  return {
    name: String((err && err.name) || 'Error'),
    message: String((err && err.message) || err),
    cause: c ? { name: String(c.name || 'Error'), message: String(c.message || ''), code: c.code ? String(c.code) : '' } : null,
  };
}

/** The request headers fetch would send: the user's, then fetch's defaults where absent. */
function requestHeaders(list, https) {
  const names = new Set();
  const flat = [];
  for (const [k, v] of list) {
    const name = String(k).toLowerCase();
    names.add(name);
    flat.push(name, String(v));
  }
  const add = (name, value) => {
    if (!names.has(name)) {
      names.add(name);
      flat.push(name, value);
    }
  };
  add('accept', '*/*');
  add('accept-language', '*');
  add('sec-fetch-mode', 'cors');
  add('user-agent', 'node');
  if (names.has('range')) add('accept-encoding', 'identity');
  add('accept-encoding', https ? 'br, gzip, deflate' : 'gzip, deflate');
  return flat;
}

let zlib = null;
/** `bytes` decoded per `content-encoding` as undici's fetch does (unknown coding: as is). */
function decode(bytes, contentEncoding) {
  const codings = contentEncoding.toLowerCase().split(',');
  if (codings.length > MAX_CONTENT_ENCODINGS) {
    throw new Error(`too many content-encodings in response: ${codings.length}, maximum allowed is ${MAX_CONTENT_ENCODINGS}`);
  }
  if (!zlib) zlib = require('node:zlib');
  const z = zlib.constants;
  const steps = [];
  for (let i = codings.length - 1; i >= 0; --i) {
    const coding = codings[i].trim();
    if (coding === 'gzip' || coding === 'x-gzip') {
      steps.push((b, max) => zlib.gunzipSync(b, { flush: z.Z_SYNC_FLUSH, finishFlush: z.Z_SYNC_FLUSH, maxOutputLength: max }));
    } else if (coding === 'deflate') {
      // zlib-wrapped or raw deflate, told apart by the first byte (undici's createInflate)
      steps.push((b, max) => (b.length && (b[0] & 0x0f) === 0x08 ? zlib.inflateSync : zlib.inflateRawSync)(
        b, { flush: z.Z_SYNC_FLUSH, finishFlush: z.Z_SYNC_FLUSH, maxOutputLength: max }));
    } else if (coding === 'br') {
      steps.push((b, max) => zlib.brotliDecompressSync(
        b, { flush: z.BROTLI_OPERATION_FLUSH, finishFlush: z.BROTLI_OPERATION_FLUSH, maxOutputLength: max }));
    } else if (coding === 'zstd' && typeof zlib.zstdDecompressSync === 'function') {
      steps.push((b, max) => zlib.zstdDecompressSync(b, { finishFlush: z.ZSTD_e_end, maxOutputLength: max }));
    } else {
      return bytes;
    }
  }
  let out = bytes;
  for (const step of steps) {
    try {
      out = step(out, MAX_RESPONSE_BYTES);
    } catch (err) {
      if (err && err.code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge();
      throw fetchFailed(err, 'terminated');
    }
  }
  return out;
}

/**
 * The dispatcher handler of one exchange, in undici's controller API (onRequestStart...):
 * undici's core calls the older onConnect/onHeaders API, and a handler of that older kind
 * would be wrapped twice (the composed egress interceptor's WrapHandler turns the parsed
 * header object back into Buffers, which were then decoded again here). The headers list is
 * built from the parsed object exactly as it was from those Buffers.
 */
class Exchange {
  constructor(flight, wantBody, resolve, reject) {
    this.flight = flight;
    this.wantBody = wantBody;
    this.resolve = resolve;
    this.reject = reject;
    this.res = null;
    this.chunks = [];
    this.size = 0;
    this.controller = null;
    this.failure = null;
    this.settled = false;
  }

  fail(err) {
    if (this.settled) return;
    this.settled = true;
    this.flight.abort = null;
    this.reject(err);
  }

  abort(reason) {
    this.failure = reason;
    if (this.controller) this.controller.abort(reason);
    else this.fail(reason);
  }

  onRequestStart(controller) {
    this.controller = controller;
    if (this.failure) controller.abort(this.failure);
  }

  onResponseStart(controller, status, headers, statusText) {
    const list = [];
    let location = null;
    for (const name in headers) {
      if (!Object.hasOwn(headers, name)) continue;
      const value = headers[name];
      const first = list.length;
      if (Array.isArray(value)) for (const v of value) list.push([name, String(v)]);
      else list.push([name, String(value)]);
      // several Location values: joined with ', ' as fetch's Headers.get gives them
      if (name === 'location') for (let j = first; j < list.length; ++j) location = location === null ? list[j][1] : `${location}, ${list[j][1]}`;
    }
    const res = { status, statusText: statusText ? String(statusText) : '', headers: list, location, bytes: null };
    this.res = res;
    if (!this.wantBody(status, location)) {
      this.settled = true;
      this.flight.abort = null;
      this.resolve(res);
      // the rest of this response is not read: drop the connection, as fetch does
      this.failure = new Error('redirect');
      controller.abort(this.failure);
    }
  }

  onResponseData(controller, chunk) {
    if (this.chunks === null) return;
    this.size += chunk.length;
    if (this.size > MAX_RESPONSE_BYTES) {
      this.chunks = null;
      this.failure = tooLarge();
      controller.abort(this.failure);
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseEnd() {
    if (this.settled || this.chunks === null) return;
    this.settled = true;
    this.flight.abort = null;
    const chunks = this.chunks;
    this.res.bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, this.size);
    this.chunks = null;
    this.resolve(this.res);
  }

  onResponseError(controller, err) {
    this.fail(this.failure || fetchFailed(err, this.res === null ? 'fetch failed' : 'terminated'));
  }
}

/**
 * One HTTP exchange through `dispatcher`: {status, statusText, headers: [[name, value]...],
 * location, bytes}. The body is read only when `wantBody(status, location)` (a redirect
 * that will be followed is cut off, as fetch does). `flight.abort` is set while it runs.
 */
function exchange(transport, url, method, headers, body, flight, wantBody) {
  const direct = url.protocol === 'http:' ? transport.direct() : null;
  if (direct !== null) return send(direct, null, url, method, headers, body, flight, wantBody);
  return transport.dispatcher().then((dispatcher) => send(null, dispatcher, url, method, headers, body, flight, wantBody));
}

function send(direct, dispatcher, url, method, headers, body, flight, wantBody) {
  return new Promise((resolve, reject) => {
    const handler = new Exchange(flight, wantBody, resolve, reject);
    flight.abort = () => handler.abort(abortError());
    if (flight.aborted) {
      handler.fail(abortError());
      return;
    }
    try {
      if (direct !== null) {
        direct.checkOrigin(url.origin);
        direct.pool.dispatch(url, method, headers, body, handler);
      } else {
        dispatcher.dispatch({ origin: url.origin, path: url.pathname + url.search, method, headers, body }, handler);
      }
    } catch (err) {
      handler.fail(fetchFailed(err));
    }
  });
}

// A Location with bytes outside printable ASCII is read as UTF-8, as undici's fetch does
// (its header values are latin1 strings; isValidEncodedURL / normalizeBinaryStringToUtf8).
const locationText = (value) => (/[^\x20-\x7e]/.test(value) ? Buffer.from(value, 'latin1').toString('utf8') : value);

const sameOrigin = (a, b) => a.protocol === b.protocol && a.hostname === b.hostname && a.port === b.port;

/**
 * fetch() for an http(s) URL over `transport` (each hop: ./h1.js for http: without a proxy,
 * else undici's dispatcher): {meta, bytes} as the host fetch would give.
 */
async function httpFetch(transport, spec, parsed, body, flight) {
  let url = parsed;
  let method = spec.method;
  let headerList = spec.headers;
  let payload = body;
  const mode = spec.redirect;
  let redirects = 0;
  for (;;) {
    const hash = url.hash;
    if (BAD_PORTS.has(url.port)) throw fetchFailed(new Error('bad port'));
    const headers = requestHeaders(headerList, url.protocol === 'https:');
    let sent = null;
    if (payload !== null) sent = Buffer.from(payload, 'latin1');
    else if (method === 'POST' || method === 'PUT') sent = Buffer.alloc(0);
    const follows = (status, location) => location !== null && mode !== 'manual' && REDIRECT_STATUSES.has(status);
    const res = await exchange(transport, url, method, headers, sent, flight, (s, l) => !follows(s, l));
    if (follows(res.status, res.location)) {
      if (mode === 'error') throw fetchFailed(new Error('unexpected redirect'));
      let next;
      try {
        next = new URL(locationText(res.location), url);
      } catch (err) {
        throw fetchFailed(err);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') throw fetchFailed(new Error('URL scheme must be a HTTP(S) scheme'));
      if (redirects === MAX_REDIRECTS) throw fetchFailed(new Error('redirect count exceeded'));
      redirects += 1;
      if ((next.username || next.password) && !sameOrigin(url, next)) {
        throw fetchFailed(new Error('cross origin not allowed for request mode "cors"'));
      }
      if (next.username || next.password) throw fetchFailed(new Error('URL cannot contain credentials for request mode "cors"'));
      if (((res.status === 301 || res.status === 302) && method === 'POST') || (res.status === 303 && !METHODS_WITHOUT_BODY.has(method))) {
        method = 'GET';
        payload = null;
        headerList = headerList.filter(([k]) => !REQUEST_BODY_HEADERS.has(String(k).toLowerCase()));
      }
      if (!sameOrigin(url, next)) headerList = headerList.filter(([k]) => !CROSS_ORIGIN_DROPPED.has(String(k).toLowerCase()));
      if (!next.hash && hash) next.hash = hash;
      url = next;
      continue;
    }
    let bytes = res.bytes || Buffer.alloc(0);
    if (method !== 'HEAD' && !NULL_BODY_STATUSES.has(res.status)) {
      let encoding = null;
      for (const [k, v] of res.headers) if (k === 'content-encoding') encoding = encoding === null ? v : `${encoding}, ${v}`;
      if (encoding) bytes = decode(bytes, encoding);
    }
    // The response's URL has no fragment. A setter call re-parses, so only when there is one
    // ('#' cannot appear unescaped anywhere else in a serialized URL; "x#" has an empty hash).
    let href = url.href;
    if (href.includes('#')) {
      url.hash = '';
      href = url.href;
    }
    const meta = { status: res.status, statusText: res.statusText, url: href, redirected: redirects > 0, headers: res.headers };
    return { meta, bytes };
  }
}

// Parsed request URLs by their text: a function posting to the same URL on every call parses
// it once. Only URLs without a fragment are kept: httpFetch mutates a URL only to drop one.
const parsedUrls = new Map();
function parseUrl(text) {
  let url = parsedUrls.get(text);
  if (url === undefined) {
    url = URL.parse(text);
    if (url !== null && !text.includes('#')) {
      if (parsedUrls.size >= 256) parsedUrls.clear();
      parsedUrls.set(text, url);
    }
  }
  return url;
}

/** Host functions `fetch(specJson, bodyLatin1, callback) -> id` and `abortFetch(id)`. */
function makeFetchHost(options) {
  const inFlight = new Map();
  let nextId = 1;
  let dispatcher = null;
  let direct = null;
  // Plain http: goes through ./h1.js unless a proxy carries the requests; everything else
  // through undici's dispatcher, both under the egress guard. Each is built on first use
  // (node:net/dns load on the first fetch; the bundled undici only if ever needed).
  const transport = {
    direct() {
      if (options.egress_proxy) return null;
      if (direct === null) {
        const guard = require('./egress.js').makeGuard(options);
        const { H1Pool } = require('./h1.js');
        direct = { checkOrigin: guard.checkOrigin, pool: new H1Pool(guard.connect) };
      }
      return direct;
    },
    async dispatcher() {
      if (!dispatcher) dispatcher = require('./egress.js').makeDispatcher(options);
      if (dispatcher instanceof Promise) dispatcher = await dispatcher;
      return dispatcher;
    },
  };

  // What the host fetch is still used for: anything but a plain http(s) request.
  async function viaHostFetch(spec, body, flight, agent) {
    const controller = new AbortController();
    flight.abort = () => controller.abort();
    const init = { method: spec.method, headers: spec.headers, redirect: spec.redirect, signal: controller.signal, dispatcher: agent };
    if (body !== null && !METHODS_WITHOUT_BODY.has(spec.method)) init.body = Buffer.from(body, 'latin1');
    const res = await fetch(spec.url, init);
    const bytes = await readCapped(res);
    return {
      meta: { status: res.status, statusText: res.statusText, url: res.url, redirected: res.redirected, headers: [...res.headers] },
      bytes,
    };
  }

  async function run(spec, body, flight) {
    // Read per call: a context built ahead of `load` gets its options filled in afterwards.
    if (options.network === false) {
      const cause = Object.assign(new Error('EGRESS_DENIED: network access is disabled for this function'), { code: 'EGRESS_DENIED' });
      throw Object.assign(new TypeError('fetch failed'), { cause });
    }
    const url = parseUrl(String(spec.url));
    if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || FORBIDDEN_METHODS.has(String(spec.method).toUpperCase())) {
      const agent = await transport.dispatcher();
      if (flight.aborted) throw abortError();
      return viaHostFetch(spec, body, flight, agent);
    }
    return httpFetch(transport, spec, url, body !== null && !METHODS_WITHOUT_BODY.has(spec.method) ? body : null, flight);
  }

  return {
    fetch(specJson, body, callback) {
      if (typeof callback !== 'function') throw new TypeError('callback must be a function');
      const spec = JSON.parse(String(specJson));
      const id = nextId++;
      const flight = {
        aborted: false,
        abort: null,
      };
      inFlight.set(id, flight);
      const inv = invocations.getStore();
      const start = nowMs();
      const record = (status, error) => {
        if (inv && !inv.done) {
          inv.requests.push({
            method: String(spec.method), url: String(spec.url), status,
            duration_ms: Math.round((nowMs() - start) * 1000) / 1000, error,
            start_ms: Math.round((start - inv.start) * 1000) / 1000,
          });
        }
      };
      // W3C trace context: outbound requests continue the invocation's trace
      if (inv && inv.traceparent && !spec.headers.some(([k]) => String(k).toLowerCase() === 'traceparent')) {
        spec.headers.push(['traceparent', inv.traceparent]);
      }
      run(spec, typeof body === 'string' ? body : null, flight).then(
        ({ meta, bytes }) => {
          inFlight.delete(id);
          record(meta.status, '');
          try { callback(JSON.stringify(meta), bytes.toString('latin1')); } catch { /* in-context bug */ }
        },
        (err) => {
          inFlight.delete(id);
          const info = describe(err);
          record(0, info.cause ? `${info.message}: ${info.cause.message}` : info.message);
          try { callback(JSON.stringify({ error: info }), ''); } catch { /* in-context bug */ }
        },
      );
      return id;
    },
    abortFetch(id) {
      const flight = inFlight.get(id);
      if (!flight || flight.aborted) return;
      flight.aborted = true;
      if (flight.abort) flight.abort();
    },
  };
}

module.exports = { makeFetchHost, MAX_RESPONSE_BYTES };
