'use strict';
// Egress policy for the user's fetch (EXECUTOR-NOTES §7): private, loopback, link-local, CGNAT,
// multicast, metadata and other special ranges are refused unless allow-listed. Addresses are
// checked at connect time through a custom DNS lookup (DNS rebinding) and, for IP literals,
// which never reach lookup, before dispatch. Redirect hops are dispatched again, so re-checked.

const net = require('node:net');
const dns = require('node:dns');

const DENIED_V4 = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16],
  ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
];
const DENIED_V6 = [
  ['::', 128], ['::1', 128], ['::', 96], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64],
  ['2001::', 32], ['2001:db8::', 32], ['2002::', 16], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
];
const DENIED = new net.BlockList();
for (const [a, p] of DENIED_V4) DENIED.addSubnet(a, p, 'ipv4');
for (const [a, p] of DENIED_V6) DENIED.addSubnet(a, p, 'ipv6');

/** A BlockList of the operator's allowed CIDRs ("10.0.0.0/8", "::1/128", "127.0.0.1"). */
function allowList(cidrs) {
  const list = new net.BlockList();
  for (const raw of cidrs || []) {
    const [addr, bits] = String(raw).trim().split('/');
    const family = net.isIP(addr);
    if (!family) throw new Error(`invalid CIDR in egress_allow: ${raw}`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    list.addSubnet(addr, bits === undefined ? (family === 6 ? 128 : 32) : Number(bits), type);
  }
  return list;
}

/** Unwraps IPv4-mapped IPv6 (::ffff:a.b.c.d or ::ffff:7f00:1) to the IPv4 address. */
function canonical(address) {
  let a = String(address);
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const m = /^::ffff:(?:0:)?(.+)$/i.exec(a);
  if (m) {
    if (net.isIPv4(m[1])) return m[1];
    const parts = m[1].split(':');
    if (parts.length === 2 && parts.every((p) => /^[0-9a-f]{1,4}$/i.test(p))) {
      const hi = parseInt(parts[0], 16);
      const lo = parseInt(parts[1], 16);
      return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    }
  }
  return a;
}

/** True when `address` (an IP literal) may not be contacted under `allow`. Non-IPs: false. */
function isDenied(address, allow) {
  const a = canonical(address);
  const family = net.isIP(a);
  if (!family) return false;
  const type = family === 6 ? 'ipv6' : 'ipv4';
  if (allow && allow.check(a, type)) return false;
  return DENIED.check(a, type);
}

function deniedError(host, address) {
  const detail = host === address ? address : `${host} (${address})`;
  const err = new Error(`EGRESS_DENIED: ${detail} is not an allowed destination`);
  err.code = 'EGRESS_DENIED';
  return err;
}

function makeLookup(allow) {
  return function safeLookup(hostname, options, callback) {
    const opts = typeof options === 'object' && options !== null ? options : { family: options };
    dns.lookup(hostname, { ...opts, all: true }, (err, addresses) => {
      if (err) return callback(err);
      for (const { address } of addresses) {
        if (isDenied(address, allow)) return callback(deniedError(hostname, address));
      }
      if (opts.all) return callback(null, addresses);
      const first = addresses[0];
      return callback(null, first.address, first.family);
    });
  };
}

let Agent = null;
async function agentClass() {
  if (!Agent) {
    // The bundled undici's Agent is not exported; the first fetch creates the global dispatcher.
    await fetch('data:,');
    Agent = globalThis[Symbol.for('undici.globalDispatcher.1')].constructor;
  }
  return Agent;
}

/**
 * A dispatcher for the host fetch enforcing the policy. `options`: {egress_allow, egress_proxy}.
 * With a proxy, hostnames are resolved by the proxy (which owns the policy for them); IP
 * literals are still refused here.
 */
async function makeDispatcher(options) {
  const allow = allowList(options.egress_allow);
  let base;
  if (options.egress_proxy) {
    const { ProxyAgent } = require('undici');
    base = new ProxyAgent(String(options.egress_proxy));
  } else {
    const A = await agentClass();
    base = new A({ connect: { lookup: makeLookup(allow) } });
  }
  const checkOrigin = originCheck(allow);
  return base.compose((dispatch) => (opts, handler) => {
    checkOrigin(String(opts.origin));
    return dispatch(opts, handler);
  });
}

/**
 * checkOrigin(origin): throws the EGRESS_DENIED error when the origin's host is an IP literal
 * the policy refuses (hostnames are checked by the lookup at connect time). The verdict on an
 * origin depends on its host only, and `allow` is fixed: kept per origin.
 */
function originCheck(allow) {
  const verdicts = new Map();
  return function checkOrigin(origin) {
    let denied = verdicts.get(origin);
    if (denied === undefined) {
      const { hostname } = new URL(origin);
      denied = isDenied(hostname, allow) ? hostname : null;
      if (verdicts.size >= 256) verdicts.clear();
      verdicts.set(origin, denied);
    }
    if (denied !== null) throw deniedError(denied, canonical(denied));
  };
}

/**
 * The guard of a direct connection (./h1.js, no proxy): {checkOrigin, connect(host, port)},
 * connect opening a socket whose every DNS answer goes through the policy.
 */
function makeGuard(options) {
  const allow = allowList(options.egress_allow);
  const lookup = makeLookup(allow);
  return {
    checkOrigin: originCheck(allow),
    connect: (host, port) => net.connect({ host, port, lookup }),
  };
}

module.exports = { isDenied, allowList, makeDispatcher, makeGuard, deniedError, canonical };
