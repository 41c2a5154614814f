// In-context CommonJS loader for the bundled libraries. Sources are files under js/node_modules
// that the host resolves and compiles *into this context*; node builtins they ask for are
// in-context shims (a library never sees a host object). Libraries get a fake `process`.
(function (host, g, lib) {
  'use strict';
  // Intrinsics as locals (a global name costs an interceptor call per use, see core.js).
  const { Object, Array, String, JSON, Map, Promise, Error } = g;
  const { call } = lib;
  const cache = new Map();
  const dirname = (p) => p.slice(0, p.lastIndexOf('/')) || '/';

  const processShim = {
    env: {}, argv: [], version: 'v24.0.0', versions: { node: '24.0.0' }, platform: 'linux', browser: false,
    nextTick(fn, ...args) { Promise.resolve().then(() => fn(...args)); },
    emitWarning() {}, cwd: () => '/', exit() { throw new Error('process.exit is not available'); },
  };

  function stubStream() {
    const EventEmitter = requireFrom('', 'events/');
    function Stream() { EventEmitter.call(this); }
    Object.setPrototypeOf(Stream.prototype, EventEmitter.prototype);
    Object.setPrototypeOf(Stream, EventEmitter);
    Stream.prototype.pipe = function (dest) {
      this.on('data', (chunk) => dest.write(chunk));
      this.on('end', () => { if (typeof dest.end === 'function') dest.end(); });
      return dest;
    };
    Stream.Stream = Stream;
    return Stream;
  }

  const builtins = {
    buffer: () => ({ Buffer: lib.Buffer(), kMaxLength: 0x7fffffff }),
    events: () => requireFrom('', 'events/'),
    timers: () => lib.timers,
    stream: stubStream,
    crypto: () => lib.nodeCrypto,
    util: () => ({
      inherits(ctor, superCtor) { Object.setPrototypeOf(ctor.prototype, superCtor.prototype); ctor.super_ = superCtor; },
      format: lib.format, inspect: lib.inspect, deprecate: (fn) => fn,
      promisify: (fn) => (...args) => new Promise((res, rej) => fn(...args, (e, v) => (e ? rej(e) : res(v)))),
      isArray: Array.isArray, TextEncoder: g.TextEncoder, TextDecoder: g.TextDecoder,
    }),
    string_decoder: () => ({
      StringDecoder: class StringDecoder {
        constructor(enc) { this.d = new g.TextDecoder(enc === 'utf8' || !enc ? 'utf-8' : enc); }
        write(buf) { return this.d.decode(buf, { stream: true }); }
        end(buf) { return buf ? this.d.decode(buf) : ''; }
      },
    }),
    process: () => processShim,
  };

  function requireFrom(dir, request) {
    const name = request.startsWith('node:') ? request.slice(5) : request;
    if (Object.prototype.hasOwnProperty.call(builtins, name)) {
      const key = 'builtin:' + name;
      if (!cache.has(key)) cache.set(key, { exports: builtins[name]() });
      return cache.get(key).exports;
    }
    const file = call(host.resolveModule, dir, request);
    const cached = cache.get(file);
    if (cached) return cached.exports;
    const module = { exports: {}, id: file, filename: file, loaded: false };
    cache.set(file, module);
    try {
      if (file.endsWith('.json')) {
        module.exports = JSON.parse(call(host.readModule, file));
      } else {
        const fn = call(host.compileModule, file);
        const req = (r) => requireFrom(dirname(file), String(r));
        fn.call(module.exports, module.exports, req, module, file, dirname(file), processShim, g);
      }
    } catch (e) {
      cache.delete(file);
      throw e;
    }
    module.loaded = true;
    return module.exports;
  }
  lib.require = (request) => requireFrom('', request);
})
