// The in-Node limit for the batch path: the same handler, called in a loop in one process,
// with JSON in (one array per batch, parsed once) and JSON out (one status per event).
// Usage: node loop.js DURATION_MS BATCH_SIZE < event.json ; prints {"events":N,"seconds":S}.
'use strict';
const vm = require('node:vm');
const fs = require('node:fs');

const code = 'async function onTrack(event, settings) { return }';
const context = vm.createContext(Object.create(null));
vm.runInContext(code, context);
const handler = context.onTrack;

const durationMs = Number(process.argv[2] || 1000);
const batchSize = Number(process.argv[3] || 200);
const event = fs.readFileSync(0, 'utf8').trim();
const batchJson = '[' + Array(batchSize).fill(event).join(',') + ']';
const settings = {};

async function runBatch() {
  const events = JSON.parse(batchJson);
  const statuses = new Array(events.length);
  for (let i = 0; i < events.length; i++) {
    await handler(events[i], settings);
    statuses[i] = { outcome: 'OK', status: 200 };
  }
  return JSON.stringify(statuses);
}

async function main() {
  const warmUntil = performance.now() + Math.min(200, durationMs / 4);
  while (performance.now() < warmUntil) await runBatch();
  let events = 0;
  const started = performance.now();
  const until = started + durationMs;
  while (performance.now() < until) {
    await runBatch();
    events += batchSize;
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(JSON.stringify({ events, seconds }) + '\n');
}

main();
