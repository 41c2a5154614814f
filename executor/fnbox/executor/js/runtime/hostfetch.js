'use strict';
// Host side of the user's fetch: runs the request through the egress-guarded dispatcher,
// records it on the current invocation, and answers the in-context callback with strings only
// (metadata as JSON, the body as a latin1 string).

const { invocations, nowMs } = require('./host.js');

const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
const METHODS_WITHOUT_BODY = new Set(['GET', 'HEAD']);

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

function describe(err) {
  const cause = err && err.cause;
  const c = cause && typeof cause === 'object' ? cause : null;
  return {
    name: String((err && err.name) || 'Error'),
    message: String((err && err.message) || err),
    cause: c ? { name: String(c.name || 'Error'), message: String(c.message || ''), code: c.code ? String(c.code) : '' } : null,
  };
}

/** Host functions `fetch(specJson, bodyLatin1, callback) -> id` and `abortFetch(id)`. */
function makeFetchHost(options) {
  const inFlight = new Map();
  let nextId = 1;
  let dispatcher = null;

  async function run(spec, body, signal) {
    // Read per call: a context built ahead of `load` gets its options filled in afterwards.
    if (options.network === false) {
      const cause = Object.assign(new Error('EGRESS_DENIED: network access is disabled for this function'), { code: 'EGRESS_DENIED' });
      throw Object.assign(new TypeError('fetch failed'), { cause });
    }
    // node:net/dns and the bundled undici load on the first fetch, not at start-up
    if (!dispatcher) dispatcher = require('./egress.js').makeDispatcher(options);
    const init = {
      method: spec.method, headers: spec.headers, redirect: spec.redirect, signal,
      dispatcher: await dispatcher,
    };
    if (body !== null && !METHODS_WITHOUT_BODY.has(spec.method)) init.body = Buffer.from(body, 'latin1');
    const res = await fetch(spec.url, init);
    const bytes = await readCapped(res);
    return { res, bytes };
  }

  return {
    fetch(specJson, body, callback) {
      if (typeof callback !== 'function') throw new TypeError('callback must be a function');
      const spec = JSON.parse(String(specJson));
      const id = nextId++;
      const controller = new AbortController();
      inFlight.set(id, controller);
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
      run(spec, typeof body === 'string' ? body : null, controller.signal).then(
        ({ res, bytes }) => {
          inFlight.delete(id);
          record(res.status, '');
          const meta = {
            status: res.status, statusText: res.statusText, url: res.url, redirected: res.redirected,
            headers: [...res.headers],
          };
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
      const c = inFlight.get(id);
      if (c) c.abort();
    },
  };
}

module.exports = { makeFetchHost, MAX_RESPONSE_BYTES };
