'use strict';
// Host side of the in-context library loader: resolves and reads files under js/node_modules
// only, and compiles them into the calling context (the compiled Script is shared).

const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const JS_DIR = path.dirname(__dirname);
const MODULES_DIR = path.join(JS_DIR, 'node_modules') + path.sep;

function inside(file) {
  const real = path.resolve(file);
  if (!real.startsWith(MODULES_DIR)) throw new Error(`module ${file} is outside the runtime's libraries`);
  return real;
}

function makeModulesHost(ctx, lib) {
  const scripts = new Map(); // per context: nothing compiled here is shared between contexts
  void lib;
  return {
    resolveModule(dir, request) {
      const from = dir ? inside(String(dir)) : JS_DIR;
      const req = String(request);
      if (!req.startsWith('.') && !req.startsWith('/')) {
        // bare names resolve from the runtime's own node_modules only
        if (req.includes('..')) throw new Error(`Cannot find module '${req}'`);
      }
      let file;
      try {
        file = require.resolve(req, { paths: [from] });
      } catch {
        const err = new Error(`Cannot find module '${req}'`);
        err.code = 'MODULE_NOT_FOUND';
        throw err;
      }
      return inside(file);
    },
    readModule(file) {
      return fs.readFileSync(inside(String(file)), 'utf8');
    },
    compileModule(file) {
      const f = inside(String(file));
      let script = scripts.get(f);
      if (!script) {
        let src = fs.readFileSync(f, 'utf8');
        if (src.startsWith('#!')) src = '//' + src;
        script = new vm.Script(`(function (exports, require, module, __filename, __dirname, process, global) {${src}\n})`, {
          filename: path.relative(JS_DIR, f),
        });
        scripts.set(f, script);
      }
      return script.runInContext(ctx);
    },
  };
}

module.exports = { makeModulesHost };
