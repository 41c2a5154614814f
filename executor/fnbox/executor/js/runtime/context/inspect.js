// In-context (runs inside the user's vm context). A util.inspect/util.format look-alike, so
// console output never hands a user object to the host's util.inspect (which would call user
// `inspect.custom` hooks with host objects as arguments).
(function (host, g, lib) {
  'use strict';
  // Intrinsics as locals (a global name costs an interceptor call per use, see core.js).
  const { Object, Array, String, Number, Math, JSON, Map, Set, WeakMap, WeakSet, Promise, Error, Date, RegExp, Uint8Array, ArrayBuffer, parseFloat, Function } = g;
  const { getPrototypeOf, getOwnPropertyNames, getOwnPropertySymbols, getOwnPropertyDescriptor, keys: objectKeys } = Object;
  const isArray = Array.isArray;
  const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
  const BREAK = 80;

  function quote(s) {
    const q = s.includes("'") ? (s.includes('"') ? (s.includes('`') ? "'" : '`') : '"') : "'";
    let out = '';
    for (const ch of s) {
      if (ch === q || ch === '\\') out += '\\' + ch;
      else if (ch === '\n') out += '\\n';
      else if (ch === '\t') out += '\\t';
      else if (ch === '\r') out += '\\r';
      else if (ch < ' ') out += '\\x' + ch.charCodeAt(0).toString(16).padStart(2, '0');
      else out += ch;
    }
    return q + out + q;
  }

  function ctorName(v) {
    let proto = v;
    try {
      while (proto !== null) {
        const d = getOwnPropertyDescriptor(proto, 'constructor');
        if (d && typeof d.value === 'function' && typeof d.value.name === 'string' && d.value.name !== '') {
          return d.value.name;
        }
        proto = getPrototypeOf(proto);
      }
    } catch (_) { return 'Object'; }
    return null;
  }

  function fnBase(fn) {
    let src = '';
    try { src = Function.prototype.toString.call(fn); } catch (_) { /* proxies */ }
    const name = typeof fn.name === 'string' ? fn.name : '';
    if (src.startsWith('class')) return `[class ${name || '(anonymous)'}]`;
    const kind = src.startsWith('async') ? (src.includes('*') && /^async\s*function\s*\*/.test(src) ? 'AsyncGeneratorFunction' : 'AsyncFunction')
      : (/^function\s*\*/.test(src) ? 'GeneratorFunction' : 'Function');
    return name ? `[${kind}: ${name}]` : `[${kind} (anonymous)]`;
  }

  function fmtKey(k) {
    if (typeof k === 'symbol') return `[${k.toString()}]`;
    return IDENT.test(k) ? k : quote(k);
  }

  function prim(v, top) {
    switch (typeof v) {
      case 'string': return top ? v : quote(v);
      case 'number': return Object.is(v, -0) ? '-0' : String(v);
      case 'bigint': return `${v}n`;
      case 'symbol': return v.toString();
      case 'undefined': return 'undefined';
      case 'boolean': return String(v);
      default: return null;
    }
  }

  function single(base, open, close, parts, indent) {
    if (parts.length === 0) return base ? (open === '[' ? `${base} []` : `${base} {}`) : `${open}${close}`;
    const prefix = base ? base + ' ' : '';
    let total = parts.length + indent + prefix.length + open.length + 10;
    let fits = total + parts.length <= BREAK;
    for (let i = 0; fits && i < parts.length; i++) {
      total += parts[i].length;
      if (total > BREAK || parts[i].includes('\n')) fits = false;
    }
    if (fits) return `${prefix}${open} ${parts.join(', ')} ${close}`;
    const pad = '\n' + ' '.repeat(indent);
    return `${prefix}${open}${pad}  ${parts.join(`,${pad}  `)}${pad}${close}`;
  }

  function inspect(value, opts) {
    const depthMax = opts && typeof opts.depth === 'number' ? opts.depth : 2;
    const seen = [];
    function fmt(v, depth, indent) {
      const p = prim(v, false);
      if (p !== null) return p;
      if (v === null) return 'null';
      if (seen.includes(v)) return '[Circular *1]';
      try {
        return fmtObject(v, depth, indent);
      } catch (_) {
        return '[object]';
      }
    }
    function props(v, depth, indent, skip) {
      const out = [];
      let names;
      try { names = objectKeys(v); } catch (_) { return out; }
      for (const k of names) {
        if (skip && skip(k)) continue;
        const d = getOwnPropertyDescriptor(v, k);
        if (!d) continue;
        const val = 'value' in d ? fmt(d.value, depth + 1, indent + 2) : (d.get ? (d.set ? '[Getter/Setter]' : '[Getter]') : '[Setter]');
        out.push(`${fmtKey(k)}: ${val}`);
      }
      for (const s of getOwnPropertySymbols(v)) {
        const d = getOwnPropertyDescriptor(v, s);
        if (d && d.enumerable) out.push(`${fmtKey(s)}: ${'value' in d ? fmt(d.value, depth + 1, indent + 2) : '[Getter]'}`);
      }
      return out;
    }
    function fmtObject(v, depth, indent) {
      if (typeof v === 'function') {
        const base = fnBase(v);
        if (depth > depthMax) return base;
        seen.push(v);
        const parts = props(v, depth, indent, (k) => k === 'prototype');
        seen.pop();
        return parts.length ? single(base, '{', '}', parts, indent) : base;
      }
      const name = ctorName(v);
      if (v instanceof Error || (name && /Error$/.test(name) && typeof v.stack === 'string')) {
        let s = typeof v.stack === 'string' && v.stack ? v.stack : `[${String(v.name)}: ${String(v.message)}]`;
        if (depth > 0 && indent > 0) s = s.split('\n').join('\n' + ' '.repeat(indent));
        const parts = depth > depthMax ? [] : props(v, depth, indent, (k) => k === 'stack' || k === 'message');
        return parts.length ? single(s, '{', '}', parts, indent) : s;
      }
      if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString();
      if (v instanceof RegExp) return RegExp.prototype.toString.call(v);
      if (lib.isBuffer && lib.isBuffer(v)) {
        const hex = [];
        for (let i = 0; i < Math.min(v.length, 50); i++) hex.push(v[i].toString(16).padStart(2, '0'));
        return `<Buffer${hex.length ? ' ' + hex.join(' ') : ''}${v.length > 50 ? ` ... ${v.length - 50} more bytes` : ''}>`;
      }
      if (typeof v.then === 'function' && v instanceof Promise) return 'Promise { <pending> }';
      if (v instanceof WeakMap || v instanceof WeakSet) return `${name} { <items unknown> }`;
      const nullProto = getPrototypeOf(v) === null;
      if (depth > depthMax) {
        if (isArray(v)) return '[Array]';
        return nullProto ? '[Object: null prototype]' : `[${name || 'Object'}]`;
      }
      seen.push(v);
      let out;
      if (isArray(v) || ArrayBuffer.isView(v)) {
        const parts = [];
        const n = v.length;
        let holes = 0;
        for (let i = 0; i < n && parts.length < 100; i++) {
          if (!isArray(v) || i in v) {
            if (holes) { parts.push(`<${holes} empty item${holes > 1 ? 's' : ''}>`); holes = 0; }
            parts.push(fmt(v[i], depth + 1, indent + 2));
          } else holes++;
        }
        if (holes) parts.push(`<${holes} empty item${holes > 1 ? 's' : ''}>`);
        if (n > 100) parts.push(`... ${n - 100} more item${n - 100 > 1 ? 's' : ''}`);
        if (isArray(v)) parts.push(...props(v, depth, indent, (k) => /^\d+$/.test(k)));
        const base = isArray(v) ? (name === 'Array' ? '' : `${name}(${n})`) : `${name}(${n})`;
        out = single(base, '[', ']', parts, indent);
      } else if (v instanceof Map) {
        const parts = [];
        for (const [k, val] of v) parts.push(`${fmt(k, depth + 1, indent + 2)} => ${fmt(val, depth + 1, indent + 2)}`);
        out = single(`${name}(${v.size})`, '{', '}', parts, indent);
      } else if (v instanceof Set) {
        const parts = [];
        for (const val of v) parts.push(fmt(val, depth + 1, indent + 2));
        out = single(`${name}(${v.size})`, '{', '}', parts, indent);
      } else if (v instanceof ArrayBuffer) {
        const bytes = new Uint8Array(v);
        const hex = [];
        for (let i = 0; i < Math.min(bytes.length, 50); i++) hex.push(bytes[i].toString(16).padStart(2, '0'));
        out = `ArrayBuffer { [Uint8Contents]: <${hex.join(' ')}>, byteLength: ${bytes.length} }`;
      } else {
        const parts = props(v, depth, indent);
        let base = nullProto ? '[Object: null prototype]' : (name === 'Object' ? '' : (name || '[Object: null prototype]'));
        if (lib.inspectTag) {
          const tag = lib.inspectTag(v);
          if (tag) base = tag;
        }
        out = single(base, '{', '}', parts, indent);
      }
      seen.pop();
      return out;
    }
    return fmt(value, 0, 0);
  }

  function format(...args) {
    if (args.length === 0) return '';
    const first = args[0];
    let out = '';
    let i = 1;
    if (typeof first === 'string') {
      if (first.includes('%') && args.length > 1) {
        let last = 0;
        for (let j = 0; j < first.length - 1; j++) {
          if (first[j] !== '%') continue;
          const c = first[j + 1];
          let rep = null;
          if (c === '%') { out += first.slice(last, j) + '%'; last = j + 2; j++; continue; }
          if (i >= args.length) continue;
          const a = args[i];
          if (c === 's') rep = typeof a === 'string' ? a : (typeof a === 'bigint' ? `${a}n` : (typeof a === 'object' && a !== null ? inspect(a, { depth: 1 }) : String(a)));
          else if (c === 'd' || c === 'i') {
            if (typeof a === 'bigint') rep = `${a}n`;
            else if (typeof a === 'symbol') rep = 'NaN';
            else { const n = Number(a); rep = String(c === 'i' ? Math.trunc(n) : n); }
          } else if (c === 'f') rep = typeof a === 'symbol' ? 'NaN' : String(parseFloat(a));
          else if (c === 'j') { try { rep = JSON.stringify(a); } catch (_) { rep = '[Circular]'; } }
          else if (c === 'o' || c === 'O') rep = inspect(a, { depth: c === 'o' ? 4 : 2 });
          else if (c === 'c') rep = '';
          if (rep === null) continue;
          out += first.slice(last, j) + rep;
          last = j + 2;
          j++;
          i++;
        }
        out += first.slice(last);
      } else {
        out = first;
      }
    } else {
      out = inspect(first);
    }
    for (; i < args.length; i++) {
      const a = args[i];
      out += ' ' + (typeof a === 'string' ? a : inspect(a));
    }
    return out;
  }

  lib.inspect = inspect;
  lib.format = format;
})
