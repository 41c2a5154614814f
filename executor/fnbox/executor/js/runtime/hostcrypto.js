'use strict';
// Host side of the in-context `crypto`: node:crypto objects stay here behind numeric handles;
// data crosses as latin1 strings, options and keys as JSON.

let cryptoModule = null;
// node:crypto costs ~14 ms of start-up: load it on first use
const nodeCrypto = () => (cryptoModule ??= require('node:crypto'));

const L1 = 'latin1';
const bytes = (s) => Buffer.from(String(s), L1);

function keyInput(json) {
  if (json === null || json === undefined || json === '') return undefined;
  const k = JSON.parse(String(json));
  if (typeof k === 'string') return k;
  if (k && typeof k === 'object' && '$b' in k) return bytes(k.$b);
  if (k && typeof k === 'object') {
    const out = { ...k };
    if (out.key && typeof out.key === 'object' && '$b' in out.key) out.key = bytes(out.key.$b);
    if (out.passphrase && typeof out.passphrase === 'object' && '$b' in out.passphrase) out.passphrase = bytes(out.passphrase.$b);
    return out;
  }
  throw new TypeError('invalid key');
}

// --- webcrypto marshalling ------------------------------------------------------------
function makeSubtle(keys) {
  let nextKey = 1;
  function unmarshal(v) {
    if (Array.isArray(v)) return v.map(unmarshal);
    if (v && typeof v === 'object') {
      if ('$b' in v) return bytes(v.$b);
      if ('$k' in v) {
        const k = keys.get(v.$k);
        if (!k) throw new TypeError('unknown CryptoKey');
        return k;
      }
      const o = {};
      for (const [key, val] of Object.entries(v)) o[key] = unmarshal(val);
      return o;
    }
    return v;
  }
  function marshal(v) {
    if (v instanceof ArrayBuffer) return { $b: Buffer.from(v).toString(L1) };
    if (ArrayBuffer.isView(v)) return { $b: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString(L1) };
    if (v instanceof globalThis.CryptoKey) {
      const id = nextKey++;
      keys.set(id, v);
      return { $k: id, type: v.type, extractable: v.extractable, algorithm: marshal(v.algorithm), usages: [...v.usages] };
    }
    if (Array.isArray(v)) return v.map(marshal);
    if (v && typeof v === 'object') {
      const o = {};
      for (const [key, val] of Object.entries(v)) o[key] = marshal(val);
      return o;
    }
    return v;
  }
  return { marshal, unmarshal };
}

function makeCryptoHost() {
  const objects = new Map();
  const keys = new Map();
  let next = 1;
  const { marshal, unmarshal } = makeSubtle(keys);
  const get = (id) => {
    const o = objects.get(id);
    if (!o) throw new Error('crypto object already finalized');
    return o;
  };
  return {
    cryptoNew(kind, alg, keyJson, optsJson) {
      const opts = optsJson ? JSON.parse(String(optsJson)) : undefined;
      const a = String(alg);
      let obj;
      switch (String(kind)) {
        case 'hash': obj = nodeCrypto().createHash(a, opts); break;
        case 'hmac': obj = nodeCrypto().createHmac(a, keyInput(keyJson)); break;
        case 'cipher': obj = nodeCrypto().createCipheriv(a, keyInput(keyJson), opts.iv === null ? null : bytes(opts.iv), opts.options); break;
        case 'decipher': obj = nodeCrypto().createDecipheriv(a, keyInput(keyJson), opts.iv === null ? null : bytes(opts.iv), opts.options); break;
        case 'sign': obj = nodeCrypto().createSign(a); break;
        case 'verify': obj = nodeCrypto().createVerify(a); break;
        default: throw new TypeError(`unknown crypto object ${kind}`);
      }
      const id = next++;
      objects.set(id, { kind: String(kind), obj });
      return id;
    },
    cryptoUpdate(id, data) {
      const o = get(id);
      const out = o.obj.update(bytes(data));
      return o.kind === 'cipher' || o.kind === 'decipher' ? out.toString(L1) : '';
    },
    cryptoCall(id, method, argJson) {
      const o = get(id);
      const arg = argJson ? JSON.parse(String(argJson)) : undefined;
      switch (String(method)) {
        case 'setAAD': o.obj.setAAD(bytes(arg.data), arg.options); return '';
        case 'setAuthTag': o.obj.setAuthTag(bytes(arg)); return '';
        case 'getAuthTag': return o.obj.getAuthTag().toString(L1);
        case 'setAutoPadding': o.obj.setAutoPadding(arg !== false); return '';
        case 'copy': { const id2 = next++; objects.set(id2, { kind: o.kind, obj: o.obj.copy() }); return String(id2); }
        default: throw new TypeError(`unsupported crypto method ${method}`);
      }
    },
    cryptoFinal(id, keyJson, sigLatin1) {
      const o = get(id);
      try {
        switch (o.kind) {
          case 'hash': case 'hmac': return o.obj.digest().toString(L1);
          case 'cipher': case 'decipher': return o.obj.final().toString(L1);
          case 'sign': return o.obj.sign(keyInput(keyJson)).toString(L1);
          case 'verify': return o.obj.verify(keyInput(keyJson), bytes(sigLatin1)) ? 'true' : 'false';
          default: return '';
        }
      } finally {
        if (o.kind !== 'cipher') objects.delete(id); // GCM getAuthTag() comes after final()
      }
    },
    cryptoRelease(id) { objects.delete(id); },
    keyInfo(kind, keyJson) {
      const input = keyInput(keyJson);
      const k = kind === 'private' ? nodeCrypto().createPrivateKey(input) : kind === 'public' ? nodeCrypto().createPublicKey(input) : nodeCrypto().createSecretKey(input);
      const info = { type: k.type, asymmetricKeyType: k.asymmetricKeyType, symmetricKeySize: k.symmetricKeySize, details: k.asymmetricKeyDetails || null };
      if (k.type !== 'secret') info.pem = k.export({ type: k.type === 'private' ? 'pkcs8' : 'spki', format: 'pem' }).toString();
      return JSON.stringify(info);
    },
    randomBytes(n) { return nodeCrypto().randomBytes(Number(n)).toString(L1); },
    randomUUID() { return nodeCrypto().randomUUID(); },
    randomInt(min, max) { return nodeCrypto().randomInt(Number(min), Number(max)); },
    pbkdf2(pw, salt, iterations, keylen, digest) {
      return nodeCrypto().pbkdf2Sync(bytes(pw), bytes(salt), Number(iterations), Number(keylen), String(digest)).toString(L1);
    },
    scrypt(pw, salt, keylen, optsJson) {
      return nodeCrypto().scryptSync(bytes(pw), bytes(salt), Number(keylen), optsJson ? JSON.parse(String(optsJson)) : undefined).toString(L1);
    },
    hkdf(digest, ikm, salt, info, keylen) {
      return Buffer.from(nodeCrypto().hkdfSync(String(digest), bytes(ikm), bytes(salt), bytes(info), Number(keylen))).toString(L1);
    },
    listing(which) { return JSON.stringify(which === 'hashes' ? nodeCrypto().getHashes() : nodeCrypto().getCiphers()); },
    subtle(method, argsJson, callback) {
      if (typeof callback !== 'function') throw new TypeError('callback must be a function');
      const m = String(method);
      const allowed = ['digest', 'importKey', 'exportKey', 'sign', 'verify', 'encrypt', 'decrypt', 'generateKey', 'deriveBits', 'deriveKey', 'wrapKey', 'unwrapKey'];
      if (!allowed.includes(m)) throw new TypeError(`nodeCrypto().subtle.${m} is not supported`);
      Promise.resolve()
        .then(() => nodeCrypto().subtle[m](...unmarshal(JSON.parse(String(argsJson)))))
        .then((v) => JSON.stringify({ ok: marshal(v) }))
        .then(
          (text) => { try { callback(text); } catch { /* in-context bug */ } },
          (e) => { try { callback(JSON.stringify({ error: { name: String(e && e.name), message: String(e && e.message) } })); } catch { /* */ } },
        );
    },
    releaseKey(id) { keys.delete(id); },
  };
}

module.exports = { makeCryptoHost, keyInput };
