// In-context `crypto`: node's crypto helpers users reach for (createHash/createHmac/ciphers/
// sign/verify/random*/pbkdf2/scrypt/hkdf/timingSafeEqual/KeyObject) plus webcrypto
// (getRandomValues, randomUUID, subtle). Node objects stay on the host behind numeric handles.
(function (host, g, lib) {
  'use strict';
  // Intrinsics as locals (a global name costs an interceptor call per use, see core.js).
  const { Object, Array, String, JSON, Promise, Error, TypeError, RangeError, Uint8Array, ArrayBuffer, DataView, Float32Array, Float64Array } = g;
  const { call, bytesToLatin1, latin1ToBytes, toBytes, utf8Encode } = lib;
  const jsonStringify = JSON.stringify;
  const jsonParse = JSON.parse;
  const registry = new FinalizationRegistry((id) => { try { host.cryptoRelease(id); } catch (_) { /* gone */ } });
  const keyRegistry = new FinalizationRegistry((id) => { try { host.releaseKey(id); } catch (_) { /* gone */ } });
  const B = () => lib.Buffer();

  // data (+ input encoding) -> latin1
  function dataLatin1(data, enc) {
    if (typeof data === 'string') return bytesToLatin1(B().from(data, enc || 'utf8'));
    const bytes = toBytes(data);
    if (!bytes) throw new TypeError('The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView.');
    return bytesToLatin1(bytes);
  }
  function output(latin1, enc) {
    const buf = B().from(latin1ToBytes(latin1));
    return enc && enc !== 'buffer' ? buf.toString(enc) : buf;
  }

  class KeyObject {
    #info; #input;
    constructor(info, input) { this.#info = info; this.#input = input; }
    get type() { return this.#info.type; }
    get asymmetricKeyType() { return this.#info.asymmetricKeyType; }
    get asymmetricKeyDetails() { return this.#info.details || undefined; }
    get symmetricKeySize() { return this.#info.symmetricKeySize; }
    export(options) {
      if (this.#info.type === 'secret') return B().from(latin1ToBytes(jsonParse(this.#input).$b));
      const pem = this.#info.pem;
      return options && options.format === 'der' ? B().from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64') : pem;
    }
    equals(other) { return other instanceof KeyObject && other.#input === this.#input; }
    static { lib.keyJson = (k) => k.#input; }
  }
  // key (string | Buffer | KeyObject | {key, passphrase, ...}) -> JSON the host understands
  function keyJson(key) {
    if (key instanceof KeyObject) return lib.keyJson(key);
    if (typeof key === 'string') return jsonStringify(key);
    const bytes = toBytes(key);
    if (bytes) return jsonStringify({ $b: bytesToLatin1(bytes) });
    if (key && typeof key === 'object') {
      const o = {};
      for (const k of Object.keys(key)) {
        const v = key[k];
        if (k === 'key' && v instanceof KeyObject) return lib.keyJson(v);
        o[k] = toBytes(v) ? { $b: bytesToLatin1(toBytes(v)) } : v;
      }
      return jsonStringify(o);
    }
    throw new TypeError('The "key" argument must be of type string or an instance of Buffer, TypedArray, DataView or KeyObject.');
  }
  const makeKey = (kind) => (input) => {
    const json = kind === 'secret' ? jsonStringify({ $b: bytesToLatin1(typeof input === 'string' ? utf8Encode(input) : toBytes(input)) }) : keyJson(input);
    return new KeyObject(jsonParse(call(host.keyInfo, kind, json)), json);
  };

  class HostObject {
    #id; #done = false;
    constructor(kind, alg, key, opts) {
      this.#id = call(host.cryptoNew, kind, String(alg), key === undefined ? '' : keyJson(key), opts === undefined ? '' : jsonStringify(opts));
      registry.register(this, this.#id);
    }
    update(data, enc) {
      if (this.#done) throw new Error('Digest already called');
      return call(host.cryptoUpdate, this.#id, dataLatin1(data, enc));
    }
    hostCall(method, arg) { return call(host.cryptoCall, this.#id, method, arg === undefined ? '' : jsonStringify(arg)); }
    finish(key, sig) {
      if (this.#done) throw new Error('Digest already called');
      this.#done = true;
      return call(host.cryptoFinal, this.#id, key === undefined ? '' : keyJson(key), sig === undefined ? '' : sig);
    }
  }
  class Hash extends HostObject {
    update(data, enc) { super.update(data, enc); return this; }
    digest(enc) { return output(this.finish(), enc); }
  }
  class Cipher extends HostObject {
    update(data, inEnc, outEnc) { return output(super.update(data, inEnc), outEnc); }
    final(outEnc) { return output(this.finish(), outEnc); }
    setAAD(data, options) { this.hostCall('setAAD', { data: dataLatin1(data), options }); return this; }
    setAuthTag(tag) { this.hostCall('setAuthTag', dataLatin1(tag)); return this; }
    getAuthTag() { return output(this.hostCall('getAuthTag')); }
    setAutoPadding(p = true) { this.hostCall('setAutoPadding', p !== false); return this; }
  }
  class Sign extends HostObject {
    update(data, enc) { super.update(data, enc); return this; }
    sign(key, enc) { return output(this.finish(key), enc); }
  }
  class Verify extends HostObject {
    update(data, enc) { super.update(data, enc); return this; }
    verify(key, sig, enc) { return this.finish(key, dataLatin1(sig, enc)) === 'true'; }
  }
  const cipherOpts = (iv, options) => ({ iv: iv === null || iv === undefined ? null : dataLatin1(iv), options });

  function getRandomValues(arr) {
    if (!ArrayBuffer.isView(arr) || arr instanceof Float32Array || arr instanceof Float64Array) {
      throw new TypeError('The data argument must be an integer-type TypedArray');
    }
    if (arr.byteLength > 65536) throw new lib.DOMException(`The ArrayBufferView's byte length (${arr.byteLength}) exceeds the number of bytes of entropy available via this API (65536)`, 'QuotaExceededError');
    new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength).set(latin1ToBytes(call(host.randomBytes, arr.byteLength)));
    return arr;
  }

  // --- webcrypto -------------------------------------------------------------------------
  class CryptoKey {
    #id; #meta;
    constructor(meta) { this.#id = meta.$k; this.#meta = meta; keyRegistry.register(this, meta.$k); }
    get type() { return this.#meta.type; }
    get extractable() { return this.#meta.extractable; }
    get algorithm() { return unmarshal(this.#meta.algorithm); }
    get usages() { return this.#meta.usages.slice(); }
    static { lib.cryptoKeyId = (k) => k.#id; }
  }
  function marshal(v) {
    if (v instanceof CryptoKey) return { $k: lib.cryptoKeyId(v) };
    const bytes = toBytes(v);
    if (bytes) return { $b: bytesToLatin1(bytes) };
    if (Array.isArray(v)) return v.map(marshal);
    if (v && typeof v === 'object') { const o = {}; for (const k of Object.keys(v)) o[k] = marshal(v[k]); return o; }
    return v;
  }
  function unmarshal(v) {
    if (Array.isArray(v)) return v.map(unmarshal);
    if (v && typeof v === 'object') {
      if ('$b' in v) return latin1ToBytes(v.$b).buffer;
      if ('$k' in v) return new CryptoKey(v);
      const o = {};
      for (const k of Object.keys(v)) o[k] = unmarshal(v[k]);
      return o;
    }
    return v;
  }
  const subtle = {};
  for (const m of ['digest', 'importKey', 'exportKey', 'sign', 'verify', 'encrypt', 'decrypt', 'generateKey', 'deriveBits', 'deriveKey', 'wrapKey', 'unwrapKey']) {
    subtle[m] = function (...args) {
      return new Promise((resolve, reject) => {
        call(host.subtle, m, jsonStringify(marshal(args)), (text) => {
          let r;
          try { r = jsonParse(text); if (!r.error) r.value = unmarshal(r.ok); } catch (e) { reject(e); return; }
          if (r.error) reject(r.error.name && r.error.name !== 'Error' && r.error.name !== 'TypeError' ? new lib.DOMException(r.error.message, r.error.name) : new TypeError(r.error.message));
          else resolve(r.value);
        });
      });
    };
  }
  const webcrypto = { subtle, getRandomValues, randomUUID: () => call(host.randomUUID) };

  const nodeCrypto = {
    createHash: (alg, opts) => new Hash('hash', alg, undefined, opts),
    createHmac: (alg, key) => new Hash('hmac', alg, key),
    createCipheriv: (alg, key, iv, options) => new Cipher('cipher', alg, key, cipherOpts(iv, options)),
    createDecipheriv: (alg, key, iv, options) => new Cipher('decipher', alg, key, cipherOpts(iv, options)),
    createSign: (alg) => new Sign('sign', alg),
    createVerify: (alg) => new Verify('verify', alg),
    sign(alg, data, key) { const s = new Sign('sign', alg || 'sha256'); s.update(data); return s.sign(key); },
    verify(alg, data, key, sig) { const v = new Verify('verify', alg || 'sha256'); v.update(data); return v.verify(key, sig); },
    hash(alg, data, enc = 'hex') { return new Hash('hash', alg).update(data).digest(enc); },
    createPrivateKey: makeKey('private'),
    createPublicKey: makeKey('public'),
    createSecretKey: makeKey('secret'),
    KeyObject,
    randomBytes(n, cb) {
      const buf = output(call(host.randomBytes, n));
      if (typeof cb === 'function') { Promise.resolve().then(() => cb(null, buf)); return undefined; }
      return buf;
    },
    randomFillSync(buf, offset = 0, size) {
      const view = toBytes(buf);
      const n = size === undefined ? view.length - offset : size;
      view.set(latin1ToBytes(call(host.randomBytes, n)), offset);
      return buf;
    },
    randomInt(min, max, cb) {
      if (max === undefined || typeof max === 'function') { cb = max; max = min; min = 0; }
      const n = call(host.randomInt, min, max);
      if (typeof cb === 'function') { Promise.resolve().then(() => cb(null, n)); return undefined; }
      return n;
    },
    randomUUID: () => call(host.randomUUID),
    getRandomValues,
    pbkdf2Sync: (pw, salt, it, len, digest) => output(call(host.pbkdf2, dataLatin1(pw), dataLatin1(salt), it, len, digest)),
    pbkdf2(pw, salt, it, len, digest, cb) {
      let r; let err = null;
      try { r = nodeCrypto.pbkdf2Sync(pw, salt, it, len, digest); } catch (e) { err = e; }
      Promise.resolve().then(() => cb(err, r));
    },
    scryptSync: (pw, salt, len, opts) => output(call(host.scrypt, dataLatin1(pw), dataLatin1(salt), len, opts ? jsonStringify(opts) : '')),
    hkdfSync: (digest, ikm, salt, info, len) => latin1ToBytes(call(host.hkdf, digest, dataLatin1(ikm), dataLatin1(salt), dataLatin1(info), len)).buffer,
    timingSafeEqual(a, b) {
      const x = toBytes(a); const y = toBytes(b);
      if (!x || !y) throw new TypeError('The "buf1" and "buf2" arguments must be Buffers, TypedArrays or DataViews');
      if (x.length !== y.length) throw new RangeError('Input buffers must have the same byte length');
      let diff = 0;
      for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
      return diff === 0;
    },
    getHashes: () => jsonParse(call(host.listing, 'hashes')),
    getCiphers: () => jsonParse(call(host.listing, 'ciphers')),
    webcrypto,
    subtle,
  };
  lib.nodeCrypto = nodeCrypto;
  lib.cryptoKeyJson = keyJson;
  lib.def('crypto', nodeCrypto);
  lib.def('CryptoKey', CryptoKey);
})
