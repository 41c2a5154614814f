'use strict';
// Test harness: drives runtime/sandbox.js with NDJSON commands on stdin, one reply per line.
// Run with the worker flags: node --permission --allow-fs-read=<js dir> ... harness.js <js dir>
const path = require('node:path');
const readline = require('node:readline');

const jsDir = process.argv[2];
const sandbox = require(path.join(jsDir, 'runtime', 'sandbox.js'));
const egress = require(path.join(jsDir, 'runtime', 'egress.js'));
const write = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
let fn = null;

async function handle(cmd) {
  switch (cmd.op) {
    case 'check':
      return { error: sandbox.check(cmd.code, cmd.filename) };
    case 'load': {
      const t0 = performance.now();
      try {
        fn = await sandbox.load({
          type: cmd.type, code: cmd.code, filename: cmd.filename || 'fn.js', options: cmd.options || {},
          onStrayLog: (line) => write({ stray: line }),
        });
        return { ok: true, ms: performance.now() - t0 };
      } catch (e) {
        return { ok: false, error: { name: e.name, message: e.message, stack: e.stack, line: e.line, column: e.column } };
      }
    }
    case 'invoke': {
      const segs = cmd.segments.map((s) => Buffer.from(s, 'utf8'));
      const result = await fn.invoke(cmd.kind, segs, cmd.trace || {});
      return { result };
    }
    case 'policy': {
      const allow = egress.allowList(cmd.allow || []);
      return { denied: cmd.addresses.map((a) => egress.isDenied(a, allow)) };
    }
    case 'host_probe':
      // what the host realm sees after user code ran (prototype pollution must not leak)
      return { polluted: ({}).polluted, fnPolluted: (function () {}).polluted, arrPolluted: [].polluted, toJSON: typeof Object.prototype.toJSON };
    case 'require_ms': {
      return { ms: requireMs };
    }
    default:
      return { error: `unknown op ${cmd.op}` };
  }
}

const t = performance.now();
const requireMs = performance.now() - t;
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const cmd = JSON.parse(line);
  handle(cmd).then(
    (reply) => write({ id: cmd.id, ...reply }),
    (e) => write({ id: cmd.id, fatal: String(e && e.stack) }),
  );
});
