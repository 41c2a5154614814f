'use strict';
// The worker's stdin and stdout (worker.js): process.stdin/stdout, or with --fd-io fds 0 and 1.

const fs = require('node:fs');

// With --fd-io, frames travel over fds 0 and 1 through node:fs, not process.stdin/stdout: for
// pipes those are net.Sockets, and loading node:net and node:stream costs a fresh worker
// 10-15 ms of CPU (--disallow-code-generation-from-strings changes V8's flag hash, so V8
// rejects Node's built-in code cache and compiles every built-in module loaded after start).
// The pipes are blocking (nothing here opens a libuv handle on them): reads wait in a
// threadpool thread, writes are synchronous like a Socket's on a pipe. Should a write or read
// find its fd non-blocking (EAGAIN), that direction falls back to the real stream.
// The parent passes --fd-io only when no RLIMIT_AS applies: starting libuv's threadpool (four
// threads with 8 MiB stacks) at start-up can exceed an address-space limit near node's own
// ~1.3 GiB, and libuv aborts when it cannot create them.

/** stdout for frames only: any other process.stdout write is routed to stderr. */
function takeStdout(fdIo) {
  if (!fdIo) {
    const stdout = process.stdout;
    const write = stdout.write.bind(stdout);
    const stderr = process.stderr;
    stdout.write = function strayWrite(chunk, encoding, cb) {
      stderr.write('[stray stdout] ');
      return stderr.write(chunk, encoding, cb);
    };
    return write;
  }
  const real = Object.getOwnPropertyDescriptor(process, 'stdout').get;
  let stray = null;
  Object.defineProperty(process, 'stdout', {
    configurable: true,
    enumerable: true,
    get() {
      if (stray === null) {
        const { Writable } = require('node:stream');
        stray = new Writable({
          write(chunk, encoding, cb) {
            process.stderr.write('[stray stdout] ');
            process.stderr.write(chunk, encoding, cb);
          },
        });
      }
      return stray;
    },
  });
  let stream = null;
  return function writeOut(buf) {
    if (stream !== null) return stream.write(buf);
    let off = 0;
    try {
      while (off < buf.length) off += fs.writeSync(1, buf, off, buf.length - off);
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
      stream = real.call(process);
      return stream.write(buf.subarray(off));
    }
    return true;
  };
}

/**
 * Calls onData(chunk) for each read of stdin and onEnd() at its end; returns upgrade(),
 * which moves a --fd-io reader to process.stdin (see below). While a read waits in
 * the threadpool, Node's exit would hang (it joins the threadpool's threads), so exiting
 * then (a fatal error outside a read's callback, an uncaught exception) SIGKILLs the process
 * instead: the parent sees a crash either way. At EOF no read is pending and exit is normal.
 */
function readInput(fdIo, onData, onEnd) {
  const useStream = () => {
    process.stdin.on('data', onData);
    process.stdin.on('end', onEnd);
  };
  if (!fdIo) {
    useStream();
    return () => false;
  }
  const buf = Buffer.allocUnsafe(64 * 1024);
  let pending = false;
  let upgraded = false;
  // A read through the threadpool costs every frame two thread hops (the pool thread wakes,
  // then wakes the main thread); process.stdin is read by the main thread's epoll. A busy
  // worker switches once its start is long past: upgrade() builds process.stdin (loading
  // node:net and node:stream, the 10-15 ms that --fd-io saves a fresh worker) and the switch
  // is made when the read already waiting in the threadpool returns, so that no read is ever
  // pending on both. The pipe's bytes stay in order: the next ones go to the stream.
  let wantStream = false;
  // Node would wait for the read in the threadpool forever: go at once, and say the exit
  // status that SIGKILL hides (the parent reads it from stderr; process.py).
  process.on('exit', (code) => {
    if (!pending) return;
    process.stderr.write(`fnbox-worker: exit status ${code}\n`);
    process.kill(process.pid, 'SIGKILL');
  });
  // Node prints an uncaught exception only after 'exit': print it first (it is the crash
  // report the parent reads from stderr).
  process.on('uncaughtExceptionMonitor', (err) => {
    if (pending) process.stderr.write(`Uncaught ${err && err.stack ? err.stack : String(err)}\n`);
  });
  const next = () => {
    pending = true;
    fs.read(0, buf, 0, buf.length, null, afterRead);
  };
  const afterRead = (err, n) => {
    pending = false;
    if (err && err.code === 'EAGAIN') {
      upgraded = true;
      useStream();
    } else if (err || n === 0) {
      onEnd();
    } else {
      onData(Buffer.from(buf.subarray(0, n))); // a copy: frames keep views of their chunk
      if (wantStream && !upgraded) {
        upgraded = true;
        useStream();
      } else {
        next();
      }
    }
  };
  next();
  return function upgrade() {
    if (wantStream || upgraded) return false;
    wantStream = true;
    void process.stdin; // created now (paused until useStream adds its listeners)
    return true;
  };
}

module.exports = { takeStdout, readInput };
