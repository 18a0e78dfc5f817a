// Pieces several views are built from: cards, tables, error lines, state badges, figures,
// and the card listing what failed to load.

import { errorText } from '../api.js';
import { append, dash, h, replaceChildren, setText } from '../dom.js';

export function section(title, ...children) {
  return h('section', { class: 'card' }, title ? h('h2', { text: title }) : null, children);
}

export function errorBox(testid) {
  return h('p', { class: 'inline-error', 'data-testid': testid, hidden: true });
}

export function showError(box, e) {
  if (!e) {
    box.hidden = true;
    return;
  }
  setText(box, errorText(e));
  box.hidden = false;
}

// Runs `load` (an API call) for a view that shows its errors in `problem`: clears the error
// and gives the answer, or shows the error and gives `undefined` (an answer is never that).
export async function loadShown(problem, load) {
  try {
    const data = await load();
    showError(problem, null);
    return data;
  } catch (e) {
    showError(problem, e);
    return undefined;
  }
}

export function stateBadge(state) {
  return h('span', { class: 'state state-' + String(state).replace(/[^a-z]/g, ''), text: dash(state) });
}

export function table(headers, testid) {
  const tbody = h('tbody');
  const el = h('table', { class: 'table', 'data-testid': testid }, h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col', text: x })))), tbody);
  return { el, tbody };
}

export function emptyRow(tbody, columns, text) {
  replaceChildren(tbody, h('tr', { class: 'empty' }, h('td', { colspan: columns, text })));
}

// One figure with its label; `kind` ('good', 'warn', 'bad') colours it.
export function stat(label, value, kind, testid) {
  return h('div', { class: 'stat' + (kind ? ' stat-' + kind : ''), 'data-testid': testid }, h('div', { class: 'stat-value', text: value }), h('div', { class: 'stat-label', text: label }));
}

export function failuresCard(failures) {
  const t = table(['Origin', 'Error'], 'failures');
  append(
    t.tbody,
    failures.map((f) => h('tr', {}, h('td', { class: 'mono', text: dash(f.origin) }), h('td', { class: 'error-text', text: dash(f.error) })))
  );
  return section('Failed to load', h('p', { class: 'muted small', text: 'Folders and packages in the base directory that gp could not load, with why.' }), t.el);
}
