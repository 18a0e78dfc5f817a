// The plugins page (#/plugins): every plugin gp knows in one table, updated in place (rows
// move only when out of order, so a file being chosen for an upgrade survives a refresh),
// with the actions each offers.

import { actionsFor, showActions } from '../actions.js';
import { dash, duration, h, number, pluginHref, replaceChildren, setText, time } from '../dom.js';
import { loadPlugins } from '../store.js';
import { emptyRow, errorBox, failuresCard, loadShown, section, stateBadge, table } from './parts.js';

export function plugins(app) {
  const problem = errorBox('plugins-error');
  const t = table(['Name', 'Version', 'State', 'Routes', 'Calls', 'Errors', 'p99', 'Last error', 'Actions'], 'plugins-table');
  const failures = h('div', { class: 'failures' });
  const rows = new Map(); // name → { tr, cells, actionsKey }

  app.append(
    h('h1', { text: 'Plugins' }),
    h('p', { class: 'muted', text: 'Every plugin gp knows, refreshed every few seconds. Actions ask before they change anything.' }),
    problem,
    section(null, h('div', { class: 'table-wrap' }, t.el)),
    failures
  );

  function row(p) {
    let r = rows.get(p.name);
    if (!r) {
      r = newRow(p);
      rows.set(p.name, r);
    }
    drawRow(r, p);
    return r.tr;
  }

  async function refresh() {
    const data = await loadShown(problem, loadPlugins);
    if (data === undefined) return;
    const list = data.plugins || [];
    const names = new Set(list.map((p) => p.name));
    for (const [name, r] of rows) {
      if (!names.has(name)) {
        r.tr.remove();
        rows.delete(name);
      }
    }
    if (!list.length) {
      emptyRow(t.tbody, 9, 'No plugins yet: put plugins in the base directory.');
    } else {
      const empty = t.tbody.querySelector('tr.empty');
      if (empty) empty.remove();
      // In order, moving only what is out of place.
      let before = t.tbody.firstChild;
      for (const p of list) {
        const tr = row(p);
        if (tr !== before) t.tbody.insertBefore(tr, before);
        else before = before.nextSibling;
      }
    }
    replaceChildren(failures, (data.failures || []).length ? failuresCard(data.failures) : null);
  }

  return { refresh };
}

// A row for plugin `p`, its cells still empty.
function newRow(p) {
  const cells = {
    version: h('td', { 'data-testid': 'version-' + p.name }),
    state: h('td', { 'data-testid': 'state-' + p.name }),
    routes: h('td', { class: 'num' }),
    calls: h('td', { class: 'num' }),
    errors: h('td', { class: 'num' }),
    p99: h('td', { class: 'num' }),
    error: h('td', { class: 'last-error' }),
    actions: h('td', { class: 'actions' }),
  };
  const tr = h(
    'tr',
    { 'data-testid': 'plugin-row-' + p.name, 'data-name': p.name },
    h('td', {}, h('a', { href: pluginHref(p.name), class: 'plugin-link', 'data-testid': 'plugin-link-' + p.name, text: p.name })),
    Object.values(cells)
  );
  return { tr, cells, actionsKey: null };
}

// Fills row `r` with what `p` says now, touching only what changed.
function drawRow(r, p) {
  const m = p.metrics;
  const c = r.cells;
  setText(c.version, dash(p.version));
  if (c.state.textContent !== p.state) replaceChildren(c.state, stateBadge(p.state));
  r.tr.setAttribute('data-state', p.state);
  setText(c.routes, (p.routes || []).length);
  setText(c.calls, m ? number(m.calls) : '—');
  setText(c.errors, m ? number(m.errors + m.panics) : '—');
  c.errors.classList.toggle('bad', !!(m && m.errors + m.panics));
  setText(c.p99, m && m.latency.count ? duration(m.latency.p99_ns) : '—');
  const last = m && m.last_error;
  const lastText = p.state === 'disabled' && p.disabled ? 'disabled: ' + p.disabled.reason : last ? time(last.at_unix_ms) + ' ' + last.message : '';
  setText(c.error, lastText || '—');
  if (lastText) c.error.setAttribute('title', lastText);
  else c.error.removeAttribute('title');
  r.actionsKey = showActions(c.actions, actionsFor(p.state), p, r.actionsKey);
}
