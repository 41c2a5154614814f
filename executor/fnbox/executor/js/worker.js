'use strict';
// fnbox worker: the protocol half only (PROTOCOL.md). Frames come in on stdin and go out on
// stdout; everything that happens inside the user's sandbox is ./runtime/sandbox.js's job.
// stdout carries frames only: the real stdout write is taken at start and every other
// process.stdout write is routed to stderr, which the parent drains into its log.

const { takeStdout, readInput } = require('./fdio.js');

const PROTOCOL_VERSION = 1;
const DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024;
// A --fd-io worker that has answered this many invocations reads its stdin through
// process.stdin from then on (fdio.js): a busy worker's frames then skip the threadpool.
const UPGRADE_AFTER_INVOKES = 64;

class ProtocolViolation extends Error {}

function parseArgs(argv) {
  const opts = { maxFrameBytes: DEFAULT_MAX_FRAME_BYTES, fdIo: false };
  for (const arg of argv) {
    const m = /^--max-frame-bytes=(\d+)$/.exec(arg);
    if (m) opts.maxFrameBytes = Number(m[1]);
    if (arg === '--fd-io') opts.fdIo = true;
  }
  return opts;
}

function encodeFrame(header, segments) {
  if (segments.length) header.seg = segments.map((s) => s.length);
  // One buffer, the header text written straight into it (no intermediate copy of it).
  const head = JSON.stringify(header);
  const headLen = Buffer.byteLength(head, 'utf8');
  let bodyLen = 0;
  for (const s of segments) bodyLen += s.length;
  const frame = Buffer.allocUnsafe(8 + headLen + bodyLen);
  frame.writeUInt32BE(4 + headLen + bodyLen, 0);
  frame.writeUInt32BE(headLen, 4);
  frame.write(head, 8, headLen, 'utf8');
  let pos = 8 + headLen;
  for (const s of segments) {
    frame.set(s, pos);
    pos += s.length;
  }
  return frame;
}

function decodeRest(rest) {
  const headerLen = rest.readUInt32BE(0);
  if (4 + headerLen > rest.length) throw new ProtocolViolation('header overruns frame');
  const header = JSON.parse(rest.toString('utf8', 4, 4 + headerLen));
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new ProtocolViolation('header is not an object');
  }
  const segments = [];
  let pos = 4 + headerLen;
  for (const n of header.seg || []) {
    if (!Number.isInteger(n) || n < 0 || pos + n > rest.length) {
      throw new ProtocolViolation('bad seg list');
    }
    segments.push(rest.subarray(pos, pos + n));
    pos += n;
  }
  if (pos !== rest.length) throw new ProtocolViolation('seg does not cover the body');
  return { header, segments };
}

// Accumulates stdin chunks and yields whole frames; chunk boundaries fall anywhere.
class FrameReader {
  constructor(maxFrameBytes, onFrame) {
    this.max = maxFrameBytes;
    this.onFrame = onFrame;
    this.chunks = [];
    this.length = 0;
    this.need = null;
  }

  take(n) {
    const whole = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
    const out = whole.subarray(0, n);
    const rest = whole.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.length = rest.length;
    return out;
  }

  push(chunk) {
    this.chunks.push(chunk);
    this.length += chunk.length;
    for (;;) {
      if (this.need === null) {
        if (this.length < 4) return;
        const restLen = this.take(4).readUInt32BE(0);
        if (restLen + 4 > this.max) throw new ProtocolViolation(`frame of ${restLen + 4} bytes exceeds cap`);
        if (restLen < 6) throw new ProtocolViolation(`frame length ${restLen} too short`);
        this.need = restLen;
      }
      if (this.length < this.need) return;
      const rest = this.take(this.need);
      this.need = null;
      this.onFrame(decodeRest(rest));
    }
  }
}

function errorInfo(err) {
  if (err !== null && typeof err === 'object') {
    return {
      name: String(err.name || 'Error'),
      message: String(err.message || ''),
      stack: String(err.stack || ''),
    };
  }
  return { name: 'Error', message: String(err), stack: '' };
}

// A batch's entries as runs of equal consecutive ones, [count, outcome, status,
// error_message, has_returned, error_name] (PROTOCOL.md); returned events are appended to `segments`.
function batchRuns(batch, segments) {
  const runs = [];
  let last = null;
  let prev = null;
  for (const b of batch) {
    const has = b.returned !== null && b.returned !== undefined;
    if (has) segments.push(Buffer.from(b.returned, 'utf8'));
    if (b === prev) {
      last[0] += 1;
      continue;
    }
    const message = b.error_message || '';
    const name = b.error_name || '';
    if (last !== null && last[1] === b.outcome && last[2] === b.status && last[3] === message && last[4] === has && last[5] === name) {
      last[0] += 1;
    } else {
      last = [1, b.outcome, b.status, message, has, name];
      runs.push(last);
    }
    prev = b;
  }
  return runs;
}

function resultFrame(id, res, maxFrameBytes) {
  const segments = [];
  const events = res.events || [];
  const objects = res.objects || [];
  for (const e of events) segments.push(Buffer.from(e, 'utf8'));
  for (const o of objects) segments.push(Buffer.from(o, 'utf8'));
  const hasReturned = res.returned !== null && res.returned !== undefined;
  if (hasReturned) segments.push(Buffer.from(res.returned, 'utf8'));
  const header = {
    t: 'result',
    id,
    outcome: res.outcome,
    logs: res.logs || [],
    logs_truncated: Boolean(res.logs_truncated),
    requests: res.requests || [],
    duration_ms: res.duration_ms || 0,
    n_events: events.length,
    n_objects: objects.length,
    has_returned: hasReturned,
  };
  if (res.error) header.error = res.error;
  if (res.handlers) header.handlers = res.handlers;
  if (res.batch) header.batch_runs = batchRuns(res.batch, segments);
  const frame = encodeFrame(header, segments);
  if (frame.length <= maxFrameBytes) return frame;
  // Too large: an error instead, keeping the logs and requests if they fit (they may be
  // what is too large: many requests with long URLs), never a frame over the cap.
  const tooLarge = (keep) => encodeFrame(
    {
      t: 'result',
      id,
      outcome: 'ERROR',
      error: {
        name: 'ResultTooLarge',
        message: `the result (${frame.length} bytes) exceeds the frame cap of ${maxFrameBytes} bytes`,
        stack: '',
      },
      logs: keep ? header.logs : [],
      logs_truncated: keep ? header.logs_truncated : header.logs.length > 0,
      requests: keep ? header.requests : [],
      duration_ms: header.duration_ms,
      n_events: 0,
      n_objects: 0,
      has_returned: false,
    },
    [],
  );
  const reduced = tooLarge(true);
  return reduced.length <= maxFrameBytes ? reduced : tooLarge(false);
}

function main({ sandbox, argv = process.argv.slice(2) }) {
  const { maxFrameBytes, fdIo } = parseArgs(argv);
  const writeOut = takeStdout(fdIo);
  const send = (header, segments = []) => writeOut(encodeFrame(header, segments));
  // Results finished in the same turn of the event loop (e.g. the invocations of one read)
  // go out in one write once the turn's promise jobs have run (process.nextTick): one
  // syscall and one wake-up of the parent for all of them.
  let results = [];
  const flushResults = () => {
    const frames = results;
    results = [];
    writeOut(frames.length === 1 ? frames[0] : Buffer.concat(frames));
  };
  const sendResult = (frame) => {
    if (results.push(frame) === 1) process.nextTick(flushResults);
  };
  const stray = (line) => send({ t: 'log', line: String(line) });
  let loaded = null; // Promise of the sandbox's function, set by the one `load`.
  let invokes = 0;
  let upgrade = () => false; // set by readInput below

  function fatal(message) {
    process.stderr.write(`fnbox worker: ${message}\n`);
    process.exit(70);
  }

  async function onLoad(id, header, segments) {
    if (loaded !== null) {
      send({ t: 'ready', id, error: { name: 'WorkerError', message: 'already loaded', stack: '' } });
      return;
    }
    const code = segments.length ? segments[0].toString('utf8') : '';
    loaded = sandbox.load({
      type: header.type,
      code,
      filename: header.filename || 'function.js',
      options: header.limits || {},
      onStrayLog: stray,
    });
    try {
      await loaded;
      send({ t: 'ready', id });
    } catch (err) {
      const error = errorInfo(err);
      if (err && typeof err === 'object') {
        if (Number.isInteger(err.line)) error.line = err.line;
        if (Number.isInteger(err.column)) error.column = err.column;
      }
      send({ t: 'ready', id, error });
    }
  }

  async function onInvoke(id, header, segments) {
    let res;
    try {
      if (loaded === null) throw Object.assign(new Error('no function loaded'), { name: 'WorkerError' });
      const fn = await loaded;
      res = await fn.invoke(header.kind, segments, header.trace || {});
    } catch (err) {
      res = { outcome: 'ERROR', error: errorInfo(err), logs: [], requests: [], duration_ms: 0 };
    }
    sendResult(resultFrame(id, res, maxFrameBytes));
    if (++invokes === UPGRADE_AFTER_INVOKES) setImmediate(upgrade);
  }

  function onFrame({ header, segments }) {
    const id = header.id;
    switch (header.t) {
      case 'invoke':
        onInvoke(id, header, segments).catch((err) => fatal(`invoke: ${err && err.stack}`));
        break;
      case 'load':
        onLoad(id, header, segments).catch((err) => fatal(`load: ${err && err.stack}`));
        break;
      case 'check': {
        const code = segments.length ? segments[0].toString('utf8') : '';
        let error = null;
        try {
          error = sandbox.check(code);
        } catch (err) {
          error = { name: 'InternalError', message: String(err && err.message), line: 0, column: 0 };
        }
        send({ t: 'checked', id, error: error || null });
        break;
      }
      case 'ping':
        send({ t: 'pong', id });
        break;
      case 'cancel':
        break; // User code cannot be interrupted; the parent kills the process if it must.
      default:
        fatal(`unknown frame type ${JSON.stringify(header.t)}`);
    }
  }

  const reader = new FrameReader(maxFrameBytes, onFrame);
  upgrade = readInput(fdIo, (chunk) => {
    try {
      reader.push(chunk);
    } catch (err) {
      fatal(`bad input stream: ${err && err.message}`);
    }
  }, () => {
    if (results.length) flushResults();
    process.exit(0);
  });
  // The sandbox normally handles rejections of user promises; without any listener Node
  // would exit on the first one.
  if (process.listenerCount('unhandledRejection') === 0) {
    process.on('unhandledRejection', (reason) => {
      const e = errorInfo(reason);
      stray(`Unhandled promise rejection: ${e.name}: ${e.message}`);
    });
  }
  warmUp(maxFrameBytes);
  send({ t: 'hello', v: PROTOCOL_VERSION, pid: process.pid });
  // Optional sandbox hook: prepare what does not depend on user code (e.g. a context with the
  // runtime's globals) while this worker waits in the warm pool, so that `load` is cheaper.
  if (typeof sandbox.prepare === 'function') {
    setImmediate(() => {
      try {
        sandbox.prepare();
      } catch (err) {
        process.stderr.write(`fnbox worker: sandbox.prepare failed: ${err && err.stack}\n`);
      }
    });
  }
}

// Runs the frame paths once on dummy data before the handshake, so that the first real call
// does not pay for their lazy compilation.
function warmUp(maxFrameBytes) {
  const frames = [];
  const reader = new FrameReader(maxFrameBytes, (f) => frames.push(f));
  const res = { outcome: 'OK', events: ['{}'], objects: [], returned: '{}', logs: [], requests: [] };
  const bytes = resultFrame(0, res, maxFrameBytes);
  reader.push(bytes.subarray(0, 3));
  reader.push(bytes.subarray(3));
  errorInfo(new Error('warm-up'));
  return frames.length;
}

module.exports = { main, encodeFrame, decodeRest, resultFrame, FrameReader, PROTOCOL_VERSION };

if (require.main === module) {
  main({ sandbox: require('./runtime/sandbox.js') });
}
