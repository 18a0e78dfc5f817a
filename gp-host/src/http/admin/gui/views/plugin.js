// One plugin's page (#/plugins/NAME): its manifest, metrics, latency histogram and routes,
// the actions it offers, and the "Try it" form (only while it serves: a disabled or unloaded
// plugin cannot be called, and says so instead).

import { actionsFor, showActions } from '../actions.js';
import { api, pluginPath } from '../api.js';
import { clear, dash, dateTime, duration, h, number, replaceChildren, setText } from '../dom.js';
import { rememberPlugin } from '../store.js';
import { histogramChart } from './histogram.js';
import { emptyRow, errorBox, loadShown, section, stat, stateBadge, table } from './parts.js';
import { tryForm } from './try.js';

export function pluginPage(app, name) {
  const problem = errorBox('plugin-error');
  const title = h('h1', {}, h('a', { href: '#/plugins', class: 'crumb', text: 'Plugins' }), ' / ', h('span', { 'data-testid': 'plugin-name', text: name }), ' ');
  const stateHolder = h('span', { class: 'title-state' });
  title.append(stateHolder);
  const actions = h('div', { class: 'page-actions', 'data-testid': 'plugin-actions' });
  const facts = h('dl', { class: 'facts', 'data-testid': 'facts' });
  const routesTable = table(['Method', 'Route', 'Label'], 'plugin-routes');
  const metrics = h('div', { class: 'stats stats-small', 'data-testid': 'metrics' });
  const chart = histogramChart();
  const lastError = h('div', { 'data-testid': 'last-error' });
  const tryIt = tryForm(name);
  const tryAbout = h('p', { class: 'muted small', 'data-testid': 'try-about', text: 'Calls the plugin directly, with this label and these values, and shows the values it leaves in the context.' });
  const notServing = h('p', { class: 'muted', 'data-testid': 'try-not-serving', hidden: true });
  let actionsKey = null;

  app.append(
    title,
    problem,
    actions,
    h(
      'div',
      { class: 'columns' },
      section('Manifest', facts),
      section('Metrics', metrics, lastError)
    ),
    section('Latency histogram', h('p', { class: 'muted small', text: 'How many of the timed calls took up to each bucket\u2019s upper bound (gp times a sample of the calls: one in 64 unless the host says otherwise).' }), chart.el),
    section('Routes', routesTable.el),
    section('Try it', tryAbout, tryIt.el, notServing)
  );

  async function refresh() {
    const p = await loadShown(problem, () => api('GET', pluginPath(name)));
    if (p === undefined) return;
    rememberPlugin(name, p);
    replaceChildren(stateHolder, stateBadge(p.state));
    drawFacts(facts, p);
    const list = actionsFor(p.state).slice();
    if (p.rollback_to && p.state === 'serving') list.splice(1, 0, 'rollback');
    actionsKey = showActions(actions, list, p, actionsKey);
    drawMetrics(metrics, lastError, p.metrics);
    chart.draw(p.histogram);
    const routes = p.routes || [];
    if (!routes.length) emptyRow(routesTable.tbody, 3, 'No HTTP routes.');
    else replaceChildren(routesTable.tbody, routes.map((r) => h('tr', {}, h('td', {}, h('span', { class: 'method', text: r.method })), h('td', { class: 'mono', text: r.route }), h('td', { class: 'mono', text: r.label }))));
    tryIt.showLabels(routes);
    const serving = p.state === 'serving';
    tryAbout.hidden = !serving;
    tryIt.el.hidden = !serving;
    notServing.hidden = serving;
    if (!serving) setText(notServing, notServingText(name, p.state));
  }

  return { refresh };
}

// Why plugin `name` in `state` cannot be tried, and what makes it callable.
function notServingText(name, state) {
  if (state === 'disabled') return name + ' is disabled: enable it to try it.';
  if (state === 'draining') return name + ' is being unloaded: load it again to try it.';
  if (state === 'loading') return name + ' is loading (its on_load has not returned): try it once it serves.';
  return name + ' is not loaded: load it to try it.';
}

function drawFacts(facts, p) {
  const h1 = p.hooks || {};
  const hooks = [h1.on_load ? 'on_load' : null, h1.on_unload ? 'on_unload' : null].filter(Boolean).join(', ') || 'none';
  replaceChildren(
    facts,
    fact('Version', p.version),
    fact('Description', p.description),
    fact('State', p.state),
    p.disabled ? fact('Disabled', p.disabled.reason + ' (since ' + dateTime(p.disabled.since_unix * 1000) + ')') : null,
    fact('Origin', p.origin, 'mono'),
    fact('SHA-256', p.sha256, 'mono hash'),
    fact('ABI version', p.abi_version),
    fact('Hooks', p.state === 'serving' ? hooks : null),
    p.config ? fact('Configuration', configText(p.config)) : null,
    p.state === 'serving' ? fact('Runs', isolationText(p.isolation)) : null,
    p.rollback_to ? fact('Rolls back to', p.rollback_to) : null
  );
}

// What the API says of a plugin's configuration: the keys its schema names (never values:
// any may be a secret) and the hash of the config.json it was loaded with.
function configText(config) {
  const parts = [];
  const schema = config.schema;
  if (schema) {
    // An optional configuration is `anyOf: [the type, null]`.
    const object = (schema.anyOf || [schema]).find((s) => s && s.properties) || schema;
    const required = object.required || [];
    const keys = Object.keys(object.properties || {}).map((k) => (required.includes(k) ? k : k + '?'));
    parts.push((object.title || 'schema') + (keys.length ? ' {' + keys.join(', ') + '}' : ''));
    if (schema.anyOf) parts.push('optional');
  }
  parts.push(config.sha256 ? 'config.json ' + config.sha256.slice(0, 12) : 'no config.json');
  return parts.join(', ');
}

function fact(term, value, cls) {
  return [h('dt', { text: term }), h('dd', { class: cls || '', text: dash(value) })];
}

function isolationText(iso) {
  if (!iso) return 'in the server process';
  const runner = iso.runner_pid ? 'runner pid ' + iso.runner_pid : 'no runner now (the next call starts one)';
  return 'isolated: ' + runner + ', ' + iso.restarts + ' restart' + (iso.restarts === 1 ? '' : 's') +
    ', ' + iso.crashes + ' crash' + (iso.crashes === 1 ? '' : 'es') +
    (iso.circuit_open ? ', circuit open: failed until loaded again' : ', circuit closed');
}

// The metrics `m` (absent while the plugin is not loaded) and the last failed call.
function drawMetrics(metrics, lastError, m) {
  if (!m) {
    replaceChildren(metrics, h('p', { class: 'muted', text: 'No metrics: the plugin is not loaded.' }));
    clear(lastError);
    return;
  }
  const lat = m.latency || {};
  replaceChildren(
    metrics,
    stat('calls', number(m.calls)),
    stat('errors', number(m.errors), m.errors ? 'bad' : ''),
    stat('panics', number(m.panics), m.panics ? 'bad' : ''),
    stat('in flight', number(m.in_flight)),
    stat('timed', number(lat.count)),
    stat('mean', lat.count ? duration(lat.mean_ns) : '—'),
    stat('p50', lat.count ? duration(lat.p50_ns) : '—'),
    stat('p90', lat.count ? duration(lat.p90_ns) : '—'),
    stat('p99', lat.count ? duration(lat.p99_ns) : '—'),
    stat('loads', number(m.loads)),
    stat('upgrades', number(m.upgrades)),
    stat('unloads', number(m.unloads))
  );
  replaceChildren(
    lastError,
    m.last_error
      ? h('div', { class: 'last-error-box' }, h('strong', { text: 'Last error ' }), h('time', { text: dateTime(m.last_error.at_unix_ms) }), h('pre', { class: 'error-text', text: m.last_error.message }))
      : h('p', { class: 'muted small', text: 'No failed calls.' })
  );
}
