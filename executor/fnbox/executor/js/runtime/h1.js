'use strict';
// A small HTTP/1.1 client for the user's plain-http fetch (hostfetch.js), in place of undici's
// dispatcher for http: URLs without a proxy. Under the e2e bench a request through undici's
// Agent cost ~30 µs more worker CPU than one written and parsed here: undici defers the write
// on every reused socket by a timer turn (its idle-socket check), corks the head and body into
// a writev, and parses with llhttp in wasm through per-field JS callbacks.
//
// What undici did that this keeps: the request bytes (request line, host, connection, the
// headers in order, content-length as undici sends it), keep-alive reuse per origin, an idle
// socket dropped as soon as the server ends it, idle sockets closed after 4 s, strict parsing
// (a malformed response fails with an HTTPParserError, a head over 16 KiB with
// UND_ERR_HEADERS_OVERFLOW, a connection closed mid-response with UND_ERR_SOCKET "other side
// closed"), connect errors passed through as the cause. The egress guard is the caller's:
// `connect` gets the guarded lookup, IP literals are checked before (as the dispatcher did).
// The handler is hostfetch.js's Exchange (undici's controller API: onRequestStart,
// onResponseStart(controller, status, headers, statusText), onResponseData, onResponseEnd,
// onResponseError).

const net = require('node:net');

const MAX_HEAD_BYTES = 16 * 1024; // undici's default maxHeaderSize (Node's --max-http-header-size)
const IDLE_MS = 4000; // undici's default keep-alive timeout
const IDLE_HINT_MARGIN_MS = 2000; // undici's keepAliveTimeoutThreshold: a server's `keep-alive: timeout=N` minus this
const IDLE_MAX_MS = 600000;
const CONNECT_TIMEOUT_MS = 10000; // undici's default connect timeout
const VALIDATE_AFTER_IDLE_MS = 1000;
const KEEP_ALIVE_TIMEOUT = /timeout=(\d+)/;
const MAX_IDLE_PER_ORIGIN = 16;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([0-9]{3})(?: ([^\r\n\0]*))?$/;
const BAD_VALUE = /[\0\r\n]/;
const EXPECTS_PAYLOAD = new Set(['PUT', 'POST', 'PATCH', 'QUERY', 'PROPFIND', 'PROPPATCH']);
const CRLFCRLF = Buffer.from('\r\n\r\n');

function parserError(message, code) {
  return Object.assign(new Error(message), { name: 'HTTPParserError', code });
}
function socketError(message) {
  return Object.assign(new Error(message), { name: 'SocketError', code: 'UND_ERR_SOCKET' });
}

function invalidArgument(message) {
  return Object.assign(new Error(message), { name: 'InvalidArgumentError', code: 'UND_ERR_INVALID_ARG' });
}

/**
 * The request's head as undici writes it (writeH1 / writeBuffer), its headers checked as
 * undici's processHeader does: `host` replaces the URL's, `content-length` must match the
 * body, `connection` only says whether the connection closes after this exchange (`close`),
 * transfer-encoding / keep-alive / upgrade / expect are refused. `headers`: flat, lower-case
 * names. -> {head, reset}; reset: the connection ends after this exchange.
 */
function requestHead(method, path, urlHost, headers, body) {
  if (!TOKEN.test(method)) throw invalidArgument('invalid request method');
  if (/[^\x21-\x7e]/.test(path) || path[0] !== '/') throw invalidArgument('invalid request path');
  let host = null;
  let declaredLength = null;
  // as undici: a HEAD answer or a body sent with a method that expects none ends the connection
  let reset = method === 'HEAD' || (body !== null && body.length > 0 && !EXPECTS_PAYLOAD.has(method));
  let lines = '';
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    const value = headers[i + 1];
    if (!TOKEN.test(name)) throw invalidArgument('invalid header key');
    if (BAD_VALUE.test(value)) throw invalidArgument(`invalid ${name} header`);
    switch (name) {
      case 'host':
        if (host !== null) throw invalidArgument('duplicate host header');
        host = value;
        break;
      case 'content-length':
        if (declaredLength !== null) throw invalidArgument('duplicate content-length header');
        if (!/^[0-9]+$/.test(value)) throw invalidArgument('invalid content-length header');
        declaredLength = parseInt(value, 10);
        break;
      case 'transfer-encoding': case 'keep-alive': case 'upgrade':
        throw invalidArgument(`invalid ${name} header`);
      case 'connection':
        for (const token of value.toLowerCase().split(',')) {
          const t = token.trim();
          if (!TOKEN.test(t)) throw invalidArgument('invalid connection header');
          if (t === 'close') reset = true;
        }
        break;
      case 'expect':
        throw Object.assign(new Error('expect header not supported'), { name: 'NotSupportedError', code: 'UND_ERR_NOT_SUPPORTED' });
      default:
        lines += `${name}: ${value}\r\n`;
    }
  }
  const length = body === null ? 0 : body.length;
  if (length > 0 && declaredLength !== null && declaredLength !== length && method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS') {
    throw Object.assign(new Error('Request body length does not match content-length header'), {
      name: 'RequestContentLengthMismatchError', code: 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
    });
  }
  let head = `${method} ${path} HTTP/1.1\r\nhost: ${host === null ? urlHost : host}\r\nconnection: ${reset ? 'close' : 'keep-alive'}\r\n${lines}`;
  if (length > 0 || (body !== null && EXPECTS_PAYLOAD.has(method))) head += `content-length: ${length}\r\n`;
  return { head: `${head}\r\n`, reset };
}

/** One exchange's response parser; feeds the handler. */
class Exchange {
  constructor(conn, handler, method) {
    this.conn = conn;
    this.handler = handler;
    this.head = method === 'HEAD';
    this.state = 0; // 0 head, 1 body by length, 2 chunk size, 3 chunk data, 4 chunk CRLF, 5 trailers, 6 until close, 7 done
    this.buffered = null;
    this.remaining = 0;
    this.keepAlive = false;
    this.done = false;
    this.aborted = null;
  }

  /** The handler's controller (undici's API): abort(reason). */
  abort(reason) {
    if (this.done) return;
    this.aborted = reason;
    this.conn.destroy();
    this.fail(reason);
  }

  fail(err) {
    if (this.done) return;
    this.done = true;
    this.conn.exchange = null;
    this.handler.onResponseError(this, this.aborted || err);
  }

  end() {
    if (this.done) return;
    this.done = true;
    this.conn.exchange = null;
    this.handler.onResponseEnd(this, {});
    this.conn.release(this.keepAlive);
  }

  data(chunk) {
    if (chunk.length) this.handler.onResponseData(this, chunk);
  }

  /** Consumes `buf`; bytes after the end of the response end the connection (nothing is pipelined). */
  push(buf) {
    let b = buf;
    while (!this.done && b.length) {
      switch (this.state) {
        case 0: {
          const joined = this.buffered === null ? b : Buffer.concat([this.buffered, b]);
          const end = joined.indexOf(CRLFCRLF);
          // The head so far (no end yet) or the whole head: over the cap either way.
          if ((end < 0 ? joined.length : end) > MAX_HEAD_BYTES) {
            throw Object.assign(new Error('Headers Overflow Error'), { name: 'HeadersOverflowError', code: 'UND_ERR_HEADERS_OVERFLOW' });
          }
          if (end < 0) {
            this.buffered = joined;
            return;
          }
          this.buffered = null;
          b = joined.subarray(end + 4);
          this.onHead(joined.toString('latin1', 0, end));
          break;
        }
        case 1: case 3: {
          // Body bytes counted down: the whole body (1), or one chunk (3, then its CRLF).
          const n = Math.min(this.remaining, b.length);
          this.data(b.subarray(0, n));
          b = b.subarray(n);
          this.remaining -= n;
          if (this.remaining === 0) {
            if (this.state === 1) this.end();
            else this.state = 4;
          }
          break;
        }
        case 2: case 4: case 5: {
          const joined = this.buffered === null ? b : Buffer.concat([this.buffered, b]);
          const eol = joined.indexOf('\r\n');
          if (eol < 0) {
            if (joined.length > MAX_HEAD_BYTES) throw parserError('Chunk line too long', 'HPE_INVALID_CHUNK_SIZE');
            this.buffered = joined;
            return;
          }
          this.buffered = null;
          const line = joined.toString('latin1', 0, eol);
          b = joined.subarray(eol + 2);
          this.onLine(line);
          break;
        }
        case 6:
          this.data(b);
          b = b.subarray(b.length);
          break;
        default:
          throw parserError('Data after the response', 'HPE_INVALID_CONSTANT');
      }
    }
    if (b.length) {
      // bytes after a complete response: not ours, and no request is pipelined
      this.conn.destroy();
    }
  }

  onLine(line) {
    if (this.state === 4) {
      if (line !== '') throw parserError('Expected CRLF after chunk', 'HPE_STRICT');
      this.state = 2;
    } else if (this.state === 2) {
      const semi = line.indexOf(';');
      const size = semi < 0 ? line : line.slice(0, semi);
      if (!/^[0-9A-Fa-f]{1,12}$/.test(size)) throw parserError('Invalid character in chunk size', 'HPE_INVALID_CHUNK_SIZE');
      const n = parseInt(size, 16);
      if (n === 0) this.state = 5;
      else {
        this.remaining = n;
        this.state = 3;
      }
    } else if (line === '') {
      this.end();
    } else if (/[\0\r\n]/.test(line)) {
      throw parserError('Invalid trailer', 'HPE_INVALID_HEADER_TOKEN');
    }
  }

  onHead(text) {
    const lines = text.split('\r\n');
    const m = STATUS_LINE.exec(lines[0]);
    if (!m) throw parserError('Invalid status line', 'HPE_INVALID_CONSTANT');
    const status = Number(m[2]);
    this.conn.idleMs = IDLE_MS; // unless this answer's keep-alive header says otherwise
    const headers = {};
    let contentLength = null;
    let chunked = false;
    let transferEncoding = false;
    let close = m[1] === '0';
    for (let i = 1; i < lines.length; ++i) {
      const line = lines[i];
      const colon = line.indexOf(':');
      const name = colon > 0 ? line.slice(0, colon) : '';
      if (!TOKEN.test(name)) throw parserError('Invalid header token', 'HPE_INVALID_HEADER_TOKEN');
      const value = line.slice(colon + 1).replace(/^[\t ]+|[\t ]+$/g, '');
      if (BAD_VALUE.test(value)) throw parserError('Invalid header value char', 'HPE_INVALID_HEADER_TOKEN');
      const key = name.toLowerCase();
      const prev = headers[key];
      if (prev === undefined) headers[key] = value;
      else if (Array.isArray(prev)) prev.push(value);
      else headers[key] = [prev, value];
      if (key === 'content-length') {
        if (!/^[0-9]{1,15}$/.test(value) || (contentLength !== null && contentLength !== Number(value))) {
          throw parserError('Invalid content-length', 'HPE_UNEXPECTED_CONTENT_LENGTH');
        }
        contentLength = Number(value);
      } else if (key === 'transfer-encoding') {
        transferEncoding = true;
        chunked = /(?:^|,)[\t ]*chunked[\t ]*$/i.test(value);
      } else if (key === 'keep-alive') {
        const t = KEEP_ALIVE_TIMEOUT.exec(value);
        if (t) this.conn.idleMs = Math.min(Number(t[1]) * 1000 - IDLE_HINT_MARGIN_MS, IDLE_MAX_MS);
      } else if (key === 'connection') {
        const tokens = value.toLowerCase().split(',').map((t) => t.trim());
        if (tokens.includes('close')) close = true;
        else if (tokens.includes('keep-alive') && m[1] === '0') close = false;
      }
    }
    if (transferEncoding && contentLength !== null) {
      throw parserError('Content-Length can\'t be present with Transfer-Encoding', 'HPE_UNEXPECTED_CONTENT_LENGTH');
    }
    if (status < 200) {
      // 1xx: an interim answer, the real one follows (101 would switch protocols: refused)
      if (status === 101) throw parserError('Unexpected upgrade', 'HPE_UNEXPECTED_SPACE');
      return;
    }
    const noBody = this.head || status === 204 || status === 304;
    this.keepAlive = !close && !this.conn.reset && this.conn.idleMs > 0 && (noBody || chunked || (!transferEncoding && contentLength !== null));
    this.handler.onResponseStart(this, status, headers, m[3] || '');
    if (this.done) return; // aborted by the handler (a redirect it follows)
    if (noBody) this.end();
    else if (transferEncoding) this.state = chunked ? 2 : 6;
    else if (contentLength !== null) {
      if (contentLength === 0) this.end();
      else {
        this.remaining = contentLength;
        this.state = 1;
      }
    } else this.state = 6;
  }

  /** The server closed the connection. */
  onEnd() {
    if (this.done) return;
    if (this.state === 6) this.end();
    else this.fail(socketError('other side closed'));
  }
}

/** One socket to an origin, reused while the server keeps it alive. */
class Connection {
  constructor(pool, key, socket) {
    this.pool = pool;
    this.key = key;
    this.socket = socket;
    this.exchange = null;
    this.reset = false;
    this.idleUntil = 0;
    this.idleMs = IDLE_MS;
    this.dead = false;
    socket.setNoDelay(true);
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => {
      const err = new Error(`Connect Timeout Error (timeout: ${CONNECT_TIMEOUT_MS}ms)`);
      this.onGone(Object.assign(err, { name: 'ConnectTimeoutError', code: 'UND_ERR_CONNECT_TIMEOUT' }));
    });
    socket.once('connect', () => socket.setTimeout(0));
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('end', () => this.onGone(null));
    socket.on('error', (err) => this.onGone(err));
    socket.on('close', () => this.onGone(null));
  }

  onData(chunk) {
    const ex = this.exchange;
    if (ex === null) {
      this.destroy(); // data on an idle connection: not an answer to anything of ours
      return;
    }
    try {
      ex.push(chunk);
    } catch (err) {
      this.destroy();
      ex.fail(err);
    }
  }

  onGone(err) {
    const ex = this.exchange;
    this.destroy();
    if (ex !== null) {
      if (err) ex.fail(err);
      else ex.onEnd();
    }
  }

  destroy() {
    if (this.dead) return;
    this.dead = true;
    this.pool.forget(this);
    this.socket.destroy();
  }

  release(keepAlive) {
    if (!keepAlive || this.dead) {
      this.destroy();
      return;
    }
    this.idleUntil = Date.now() + this.idleMs;
    this.socket.unref();
    this.pool.park(this);
  }
}

/**
 * Connections per origin. `connect(hostname, port)` returns a connecting net.Socket (the
 * caller's guarded lookup in it).
 */
class H1Pool {
  constructor(connect) {
    this.connect = connect;
    this.idle = new Map(); // origin -> [Connection]
    this.sweeper = null;
  }

  park(conn) {
    let list = this.idle.get(conn.key);
    if (list === undefined) this.idle.set(conn.key, (list = []));
    if (list.length >= MAX_IDLE_PER_ORIGIN) {
      conn.destroy();
      return;
    }
    list.push(conn);
    if (this.sweeper === null) {
      this.sweeper = setInterval(() => this.sweep(), 1000);
      this.sweeper.unref();
    }
  }

  forget(conn) {
    const list = this.idle.get(conn.key);
    if (list === undefined) return;
    const i = list.indexOf(conn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.idle.delete(conn.key);
  }

  sweep() {
    const now = Date.now();
    for (const list of [...this.idle.values()]) {
      for (const conn of list.slice()) if (conn.idleUntil <= now) conn.destroy();
    }
    if (this.idle.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }

  /**
   * Sends one request on an idle or new connection of `url`'s origin and drives `handler`.
   * `headers`: flat [name, value, ...]; `body`: a Buffer or null. Throws only for a bad call.
   */
  dispatch(url, method, headers, body, handler) {
    const { head, reset } = requestHead(method, url.pathname + url.search, url.host, headers, body);
    this.send(url, method, head, reset, body, handler);
  }

  send(url, method, head, reset, body, handler) {
    const key = url.origin;
    const list = this.idle.get(key);
    let conn = null;
    let idleFor = 0;
    if (list !== undefined) {
      const now = Date.now();
      while (conn === null && list.length) {
        conn = list.pop();
        if (conn.idleUntil <= now) {
          conn.destroy(); // past its keep-alive time: the server may be closing it
          conn = null;
        }
      }
      if (list.length === 0) this.idle.delete(key);
      if (conn !== null) {
        conn.socket.ref();
        idleFor = now - (conn.idleUntil - conn.idleMs);
      }
    }
    if (conn === null) {
      const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      conn = new Connection(this, key, this.connect(host, Number(url.port) || 80));
    } else if (idleFor > VALIDATE_AFTER_IDLE_MS) {
      // undici's idle-socket check, for a connection idle long enough that the server may be
      // closing it: one timer turn for its end to show before anything is written on it (a
      // connection reused soon after its last answer skips this)
      const idle = conn;
      setTimeout(() => {
        if (idle.dead) this.send(url, method, head, reset, body, handler);
        else this.start(idle, method, head, reset, body, handler);
      }, 0);
      return;
    }
    this.start(conn, method, head, reset, body, handler);
  }

  start(conn, method, head, reset, body, handler) {
    conn.reset = reset;
    const ex = new Exchange(conn, handler, method);
    conn.exchange = ex;
    handler.onRequestStart(ex, {});
    if (ex.done) {
      conn.destroy();
      return;
    }
    if (body !== null && body.length > 0) {
      const out = Buffer.allocUnsafe(head.length + body.length);
      out.write(head, 0, 'latin1');
      out.set(body, head.length);
      conn.socket.write(out);
    } else {
      conn.socket.write(head, 'latin1');
    }
  }
}

module.exports = { H1Pool, requestHead };
