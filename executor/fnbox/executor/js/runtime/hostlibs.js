'use strict';
// Host side of jsonwebtoken and zlib for the in-context wrappers (JSON / latin1 strings only).

const { keyInput } = require('./hostcrypto.js');

const ZLIB_METHODS = new Set(['deflate', 'inflate', 'deflateRaw', 'inflateRaw', 'gzip', 'gunzip', 'unzip', 'brotliCompress', 'brotliDecompress']);
const MAX_OUTPUT = 32 * 1024 * 1024;
let jwt = null;
let zlibModule = null;
const zlib = () => (zlibModule ??= require('node:zlib'));
const jsonwebtoken = () => (jwt ??= require('jsonwebtoken'));

function result(run) {
  try {
    return JSON.stringify({ ok: run() ?? null });
  } catch (e) {
    const error = { name: String(e && e.name), message: String(e && e.message) };
    if (e && e.expiredAt) error.expiredAt = new Date(e.expiredAt).toISOString();
    if (e && e.date) error.date = new Date(e.date).toISOString();
    return JSON.stringify({ error });
  }
}

function payloadOf(json) {
  const p = JSON.parse(String(json));
  return p && typeof p === 'object' && '$b' in p ? Buffer.from(p.$b, 'latin1') : p;
}

const hostLibs = {
  jwtSign(payloadJson, keyJson, optionsJson) {
    return result(() => jsonwebtoken().sign(payloadOf(payloadJson), keyInput(keyJson), JSON.parse(String(optionsJson))));
  },
  jwtVerify(token, keyJson, optionsJson) {
    return result(() => jsonwebtoken().verify(String(token), keyInput(keyJson), JSON.parse(String(optionsJson))));
  },
  jwtDecode(token, optionsJson) {
    return result(() => jsonwebtoken().decode(String(token), JSON.parse(String(optionsJson))));
  },
  zlib(method, latin1, optsJson) {
    const m = String(method);
    if (!ZLIB_METHODS.has(m)) throw new TypeError(`zlib.${m} is not supported`);
    const opts = { ...(optsJson ? JSON.parse(String(optsJson)) : {}), maxOutputLength: MAX_OUTPUT };
    return zlib()[`${m}Sync`](Buffer.from(String(latin1), 'latin1'), opts).toString('latin1');
  },
  zlibConstants() {
    return JSON.stringify(zlib().constants);
  },
};

module.exports = { hostLibs };
