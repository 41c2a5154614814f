'use strict';
// V8 code caches of the runtime's context scripts (./context/*.js). Without them a fresh
// worker compiles their 78 KB at start, then lazily compiles every function its first load
// and invoke run. The caches are written once, after such a warm-up, by running this file
// with the worker's V8 flags (`fnbox.executor.install_js` does, at `make setup`): V8 rejects a
// cache made by another V8 version or with other flags, and a cache is only offered for the
// exact source it was made from (V8 itself only compares lengths), so a stale or missing
// cache just means compiling as before.

const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const CACHE_DIR = path.join(__dirname, '..', '.codecache');

function cachedData(name, source) {
  try {
    if (fs.readFileSync(path.join(CACHE_DIR, `${name}.js`), 'utf8') !== source) return undefined;
    return fs.readFileSync(path.join(CACHE_DIR, `${name}.bin`));
  } catch {
    return undefined; // no cache (yet)
  }
}

/** The context script `name` compiled, with its code cache when there is a valid one. */
function compileContextScript(name) {
  const source = fs.readFileSync(path.join(__dirname, 'context', `${name}.js`), 'utf8');
  const script = new vm.Script(source, {
    filename: `fnbox:runtime/${name}.js`,
    cachedData: cachedData(name, source),
  });
  return { name, source, script };
}

/** Writes the caches of `entries` (from compileContextScript, after they ran) into `dir`. */
function writeCaches(entries, dir = CACHE_DIR) {
  fs.mkdirSync(dir, { recursive: true });
  for (const { name, source, script } of entries) {
    const base = path.join(dir, name);
    fs.writeFileSync(`${base}.bin.tmp`, script.createCachedData());
    fs.writeFileSync(`${base}.js.tmp`, source);
    fs.renameSync(`${base}.bin.tmp`, `${base}.bin`);
    fs.renameSync(`${base}.js.tmp`, `${base}.js`);
  }
}

async function main() {
  const sandbox = require('./sandbox.js');
  const fn = await sandbox.load({ type: 'DESTINATION', code: 'async function onTrack(event, settings) {}', filename: 'fnbox-code-cache.js' });
  await fn.invoke('event', [Buffer.from('{"type":"track","event":"e","userId":"u"}'), Buffer.from('{}')], {});
  writeCaches(sandbox.contextScripts());
}

module.exports = { compileContextScript, writeCaches, CACHE_DIR };

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`fnbox code cache: ${err && err.stack}\n`);
    process.exit(1);
  });
}
