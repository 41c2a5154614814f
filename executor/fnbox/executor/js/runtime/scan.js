'use strict';
// Finds a dynamic `import(` in user code. vm cannot intercept import() without
// --experimental-vm-modules, and Node's rejection would hand user code a host-realm error, so
// such code is refused at load time. A light lexer skips comments, strings, templates and
// regex literals (the heuristic for `/` is the classic "what came before" rule).

const REGEX_BEFORE = new Set(['(', ',', '=', ':', '[', '!', '&', '|', '?', '{', '}', ';', '+', '-', '*', '%', '<', '>', '~', '^', '']);
const REGEX_AFTER_WORDS = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await']);
const isIdent = (c) => /[A-Za-z0-9_$\u0080-\uffff]/.test(c);

// `{ import(x) { ... } }` is a method named import, not a dynamic import.
function isMethod(code, open) {
  let depth = 0;
  for (let k = open; k < code.length; k++) {
    if (code[k] === '(') depth++;
    else if (code[k] === ')' && --depth === 0) {
      const rest = code.slice(k + 1).match(/^\s*(\S)/);
      return rest !== null && rest[1] === '{';
    }
  }
  return false;
}

/** -> {line, column} (1-based) of the first dynamic import, or null. */
function findDynamicImport(code) {
  let i = 0;
  let prev = ''; // last significant char outside comments/strings
  let prevWord = '';
  const braces = []; // template nesting: true = a `${` opened by a template
  const n = code.length;
  const pos = (at) => {
    const before = code.slice(0, at);
    const line = before.split('\n').length;
    return { line, column: at - before.lastIndexOf('\n') };
  };
  function skipTemplate() {
    // at the char after a backtick or after the `}` closing a substitution
    while (i < n) {
      const c = code[i];
      if (c === '\\') { i += 2; continue; }
      if (c === '`') { i++; return; }
      if (c === '$' && code[i + 1] === '{') { i += 2; braces.push(true); return; }
      i++;
    }
  }
  while (i < n) {
    const c = code[i];
    const d = code[i + 1];
    if (c === '/' && d === '/') { while (i < n && code[i] !== '\n') i++; continue; }
    if (c === '/' && d === '*') { const end = code.indexOf('*/', i + 2); i = end < 0 ? n : end + 2; continue; }
    if (/\s/.test(c)) { i++; continue; }
    if (c === '"' || c === "'") {
      i++;
      while (i < n && code[i] !== c && code[i] !== '\n') i += code[i] === '\\' ? 2 : 1;
      i++; prev = 'a'; prevWord = ''; continue;
    }
    if (c === '`') { i++; skipTemplate(); prev = 'a'; prevWord = ''; continue; }
    if (c === '{') { braces.push(false); i++; prev = c; prevWord = ''; continue; }
    if (c === '}') {
      const fromTemplate = braces.pop();
      i++;
      if (fromTemplate) { skipTemplate(); prev = 'a'; } else prev = c;
      prevWord = '';
      continue;
    }
    if (c === '/' && (REGEX_BEFORE.has(prev) || REGEX_AFTER_WORDS.has(prevWord))) {
      i++;
      let inClass = false;
      while (i < n && code[i] !== '\n') {
        const r = code[i];
        if (r === '\\') { i += 2; continue; }
        if (r === '[') inClass = true;
        else if (r === ']') inClass = false;
        else if (r === '/' && !inClass) break;
        i++;
      }
      i++;
      while (i < n && isIdent(code[i])) i++;
      prev = 'a'; prevWord = '';
      continue;
    }
    if (isIdent(c)) {
      const start = i;
      while (i < n && isIdent(code[i])) i++;
      const word = code.slice(start, i);
      if (word === 'import' && prev !== '.') {
        let j = i;
        for (;;) {
          while (j < n && /\s/.test(code[j])) j++;
          if (code[j] === '/' && code[j + 1] === '*') { const e = code.indexOf('*/', j + 2); j = e < 0 ? n : e + 2; continue; }
          if (code[j] === '/' && code[j + 1] === '/') { while (j < n && code[j] !== '\n') j++; continue; }
          break;
        }
        if (code[j] === '(' && !isMethod(code, j)) return pos(start);
      }
      prev = 'a'; prevWord = word;
      continue;
    }
    prev = c; prevWord = '';
    i++;
  }
  return null;
}

module.exports = { findDynamicImport };
