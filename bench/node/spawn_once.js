// Baseline for cold starts: a fresh Node process per invocation. Reads one event (JSON) on
// stdin, compiles the handler in a fresh vm context, calls it, prints the result and exits.
'use strict';
const vm = require('node:vm');

const code = 'async function onTrack(event, settings) { return }';
const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', async () => {
  const context = vm.createContext(Object.create(null));
  vm.runInContext(code, context);
  const event = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  await context.onTrack(event, {});
  process.stdout.write(JSON.stringify({ outcome: 'OK' }) + '\n');
});
