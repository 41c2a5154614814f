// In-context: Buffer, cache, window/self, and the lazily loaded libraries (evaluated in this
// context by modules.js on first access), plus jsonwebtoken and zlib bridged to the host.
(function (host, g, lib) {
  'use strict';
  // Intrinsics as locals (a global name costs an interceptor call per use, see core.js).
  const { String, Number, JSON, Map, Promise, Error, TypeError, Date, ArrayBuffer, DataView } = g;
  const { call, def, lazy, bytesToLatin1, latin1ToBytes, toBytes } = lib;
  const jsonStringify = JSON.stringify;
  const jsonParse = JSON.parse;

  // --- Buffer (the `buffer` package, in this realm) ------------------------------------
  let BufferClass = null;
  lib.Buffer = () => {
    if (BufferClass) return BufferClass;
    const B = lib.require('buffer/').Buffer;
    const toString = B.prototype.toString;
    const from = B.from;
    const byteLength = B.byteLength;
    const isEncoding = B.isEncoding;
    const b64url = (e) => typeof e === 'string' && e.toLowerCase() === 'base64url';
    B.prototype.toString = function (enc, start, end) {
      if (b64url(enc)) return toString.call(this, 'base64', start, end).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
      return toString.call(this, enc, start, end);
    };
    B.from = function (value, enc, len) {
      if (typeof value === 'string' && b64url(enc)) return from.call(B, value.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
      return from.call(B, value, enc, len);
    };
    B.byteLength = function (s, enc) { return b64url(enc) ? B.from(s, enc).length : byteLength.call(B, s, enc); };
    B.isEncoding = function (e) { return b64url(e) || isEncoding.call(B, e); };
    BufferClass = B;
    return B;
  };
  lib.isBuffer = (v) => BufferClass !== null && BufferClass.isBuffer(v);
  lazy('Buffer', () => lib.Buffer());

  def('window', g);
  def('self', g);

  // --- cache ----------------------------------------------------------------------------
  const entries = new Map();
  def('cache', {
    load(key, ttl, fn) {
      if (typeof ttl === 'function') { fn = ttl; ttl = -1; }
      if (typeof fn !== 'function') return Promise.reject(new TypeError('cache.load(key, ttl, fn): fn must be a function'));
      const k = String(key);
      const hit = entries.get(k);
      if (hit && (hit.expires === null || hit.expires > Date.now())) return hit.pending || Promise.resolve(hit.value);
      const ms = Number(ttl);
      const entry = { value: undefined, expires: null, pending: null };
      entry.pending = Promise.resolve().then(() => fn(k)).then(
        (value) => {
          entry.value = value;
          entry.pending = null;
          entry.expires = Number.isFinite(ms) && ms >= 0 ? Date.now() + ms : null;
          return value;
        },
        (err) => {
          if (entries.get(k) === entry) entries.delete(k);
          throw err;
        },
      );
      entries.set(k, entry);
      return entry.pending;
    },
    delete(key) { entries.delete(String(key)); },
  });

  // --- libraries evaluated in this context ------------------------------------------------
  lazy('_', () => lib.require('lodash'));
  lazy('moment', () => lib.require('moment-timezone'));
  lazy('xml', () => lib.require('xml'));
  lazy('xml2js', () => lib.require('xml2js'));
  lazy('OAuth', () => lib.require('oauth-1.0a'));
  lazy('uuidv5', () => {
    const v5 = lib.require('uuid').v5;
    const fn = function uuidv5(name, namespace, buf, offset) { return v5(name, namespace, buf, offset); };
    fn.uuidv5 = fn;
    fn.DNS = v5.DNS;
    fn.URL = v5.URL;
    return fn;
  });
  lazy('libphonenumberjslib', () => ({ libphonenumberjs: lib.require('libphonenumber-js') }));
  lazy('fetchretrylib', () => {
    const m = lib.require('fetch-retry');
    return { fetchretry: typeof m === 'function' ? m : m.default };
  });

  // --- jsonwebtoken (host library, JSON in/out) -------------------------------------------
  class JsonWebTokenError extends Error {
    constructor(message, inner) { super(message); this.name = 'JsonWebTokenError'; if (inner) this.inner = inner; }
  }
  class TokenExpiredError extends JsonWebTokenError {
    constructor(message, expiredAt) { super(message); this.name = 'TokenExpiredError'; this.expiredAt = expiredAt; }
  }
  class NotBeforeError extends JsonWebTokenError {
    constructor(message, date) { super(message); this.name = 'NotBeforeError'; this.date = date; }
  }
  function jwtError(e) {
    if (e.name === 'TokenExpiredError') return new TokenExpiredError(e.message, new Date(e.expiredAt));
    if (e.name === 'NotBeforeError') return new NotBeforeError(e.message, new Date(e.date));
    if (e.name === 'JsonWebTokenError') return new JsonWebTokenError(e.message);
    const err = e.name === 'TypeError' ? new TypeError(e.message) : new Error(e.message);
    return err;
  }
  const keyArg = (k) => (k === undefined || k === null ? '' : lib.cryptoKeyJson(k));
  function jwtCall(fn, args) {
    const r = jsonParse(call(fn, ...args));
    if (r.error) throw jwtError(r.error);
    return r.ok;
  }
  function withCallback(run, cb) {
    if (typeof cb !== 'function') return run();
    let value; let err = null;
    try { value = run(); } catch (e) { err = e; }
    Promise.resolve().then(() => (err ? cb(err) : cb(null, value)));
    return undefined;
  }
  const payloadArg = (p) => (toBytes(p) ? jsonStringify({ $b: bytesToLatin1(toBytes(p)) }) : jsonStringify(p === undefined ? null : p));
  lazy('jsonwebtoken', () => ({
    sign(payload, key, options, cb) {
      if (typeof options === 'function') { cb = options; options = {}; }
      return withCallback(() => jwtCall(host.jwtSign, [payloadArg(payload), keyArg(key), jsonStringify(options || {})]), cb);
    },
    verify(token, key, options, cb) {
      if (typeof options === 'function') { cb = options; options = {}; }
      if (typeof key === 'function') {
        const decoded = jwtCall(host.jwtDecode, [String(token), jsonStringify({ complete: true })]);
        const done = typeof cb === 'function' ? cb : (e) => { if (e) throw e; };
        key(decoded ? decoded.header : {}, (err, realKey) => {
          if (err) return done(new JsonWebTokenError('error in secret or public key callback: ' + err.message));
          return withCallback(() => jwtCall(host.jwtVerify, [String(token), keyArg(realKey), jsonStringify(options || {})]), done);
        });
        return undefined;
      }
      return withCallback(() => jwtCall(host.jwtVerify, [String(token), keyArg(key), jsonStringify(options || {})]), cb);
    },
    decode(token, options) { return jwtCall(host.jwtDecode, [String(token), jsonStringify(options || {})]); },
    JsonWebTokenError, TokenExpiredError, NotBeforeError,
  }));

  // --- zlib (host, bytes as latin1) ----------------------------------------------------------
  lazy('zlib', () => {
    const z = { constants: jsonParse(call(host.zlibConstants)) };
    const methods = ['deflate', 'inflate', 'deflateRaw', 'inflateRaw', 'gzip', 'gunzip', 'unzip', 'brotliCompress', 'brotliDecompress'];
    for (const m of methods) {
      const sync = (data, opts) => {
        const bytes = typeof data === 'string' ? lib.Buffer().from(data) : toBytes(data);
        if (!bytes) throw new TypeError('The "buffer" argument must be of type string or an instance of Buffer, TypedArray, DataView, or ArrayBuffer.');
        return lib.Buffer().from(latin1ToBytes(call(host.zlib, m, bytesToLatin1(bytes), opts ? jsonStringify(opts) : '')));
      };
      z[m + 'Sync'] = sync;
      z[m] = (data, opts, cb) => {
        if (typeof opts === 'function') { cb = opts; opts = undefined; }
        withCallback(() => sync(data, opts), cb);
      };
    }
    return { zlib: z };
  });
})
