// Building the page and formatting values for it: `h` and `svg` make elements, the rest turn
// numbers, durations and times into text. Nothing here talks to the server; every value goes
// into the page as text (textContent), never as markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

// An element: `attrs` become attributes (`on*` functions become listeners, `text` its
// text), `children` are nodes or strings (inserted as text).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'text') {
      el.textContent = String(value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function replaceChildren(el, ...children) {
  clear(el);
  append(el, children);
}

export function setText(el, text) {
  const value = text === null || text === undefined ? '' : String(text);
  if (el.textContent !== value) el.textContent = value;
}

// `text` with each `quoted` part (between backticks, as gp's messages quote names and
// commands) as a <code> element, the rest as text: nodes to append, never markup.
export function withCode(text) {
  const value = text === null || text === undefined ? '' : String(text);
  const parts = value.split('`');
  // An odd backtick out is left as it is.
  if (parts.length % 2 === 0) return [value];
  return parts.map((part, i) => (i % 2 === 1 ? h('code', { text: part }) : part)).filter((p) => p !== '');
}

// Sets `el`'s content to `text`, backtick-quoted parts as code (see `withCode`).
export function setCodeText(el, text) {
  const value = text === null || text === undefined ? '' : String(text);
  if (el.getAttribute('data-text') === value && el.childNodes.length) return;
  replaceChildren(el, withCode(value));
  el.setAttribute('data-text', value);
}

export function dash(value) {
  return value === null || value === undefined || value === '' ? '—' : String(value);
}

export function number(value) {
  return typeof value === 'number' ? value.toLocaleString('en-US') : '—';
}

// Nanoseconds as ns, µs, ms or s, with about three significant digits.
export function duration(ns) {
  if (typeof ns !== 'number' || !isFinite(ns)) return '—';
  const units = [[1e9, 's'], [1e6, 'ms'], [1e3, 'µs']];
  for (const [scale, unit] of units) {
    if (ns >= scale) return trim(ns / scale) + ' ' + unit;
  }
  return Math.round(ns) + ' ns';
}

function trim(x) {
  return x >= 100 ? String(Math.round(x)) : x >= 10 ? x.toFixed(1).replace(/\.0$/, '') : x.toFixed(2).replace(/\.?0+$/, '');
}

export function time(ms) {
  if (typeof ms !== 'number') return '—';
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour12: false });
}

export function dateTime(ms) {
  if (typeof ms !== 'number') return '—';
  return new Date(ms).toLocaleString([], { hour12: false });
}

export function pluginHref(name) {
  return '#/plugins/' + encodeURIComponent(name);
}

export function bytes(n) {
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + ' MiB';
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + ' KiB';
  return n + ' bytes';
}
