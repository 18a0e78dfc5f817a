// The overview page (#/): counts and rates across all plugins, charts of the last 15 minutes
// (charts.js), latency by plugin, what failed to load, and the recent lifecycle events as they
// arrive.

import { dash, dateTime, duration, h, number, pluginHref, replaceChildren, time } from '../dom.js';
import { listenToEvents, recentEvents } from '../events.js';
import { loadPlugins } from '../store.js';
import { historyCharts } from './charts.js';
import { emptyRow, errorBox, failuresCard, loadShown, section, stat, stateBadge, table } from './parts.js';

export function overview(app) {
  const counts = h('div', { class: 'stats', 'data-testid': 'overview-counts' });
  const latency = table(['Plugin', 'State', 'Calls', 'Errors', 'p50', 'p99'], 'overview-latency');
  const eventList = h('ol', { class: 'events', 'data-testid': 'events' });
  const failures = h('div', { class: 'failures' });
  const problem = errorBox('overview-error');
  const charts = historyCharts();

  app.append(
    h('h1', { text: 'Overview' }),
    problem,
    counts,
    section('Last 15 minutes', charts.el),
    failures,
    h('div', { class: 'columns' }, section('Latency by plugin', latency.el), section('Recent events', h('p', { class: 'muted small', text: 'Loads, upgrades and unloads as they happen, newest first.' }), eventList))
  );

  function drawEvents() {
    const shown = recentEvents(30);
    if (!shown.length) {
      replaceChildren(eventList, h('li', { class: 'muted', text: 'No events yet.' }));
      return;
    }
    replaceChildren(eventList, shown.map(eventItem));
  }
  const stopListening = listenToEvents(() => drawEvents());
  drawEvents();
  charts.start();

  // Rates come from the difference between two refreshes.
  let previous = null; // { at, calls, errors }

  async function refresh() {
    const data = await loadShown(problem, loadPlugins);
    if (data === undefined) return;
    const plugins = data.plugins || [];
    const by = (s) => plugins.filter((p) => p.state === s).length;
    let calls = 0;
    let errors = 0;
    for (const p of plugins) {
      if (p.metrics) {
        calls += p.metrics.calls || 0;
        errors += (p.metrics.errors || 0) + (p.metrics.panics || 0);
      }
    }
    const failed = (data.failures || []).length;
    const at = Date.now();
    const seconds = previous ? (at - previous.at) / 1000 : 0;
    const callRate = rate(calls, previous && previous.calls, seconds);
    const errorRate = rate(errors, previous && previous.errors, seconds);
    previous = { at, calls, errors };
    replaceChildren(
      counts,
      stat('serving', number(by('serving')), 'good', 'count-serving'),
      stat('loading', number(by('loading')), '', 'count-loading'),
      stat('disabled', number(by('disabled')), by('disabled') ? 'warn' : '', 'count-disabled'),
      stat('unloaded', number(by('unloaded') + by('draining')), '', 'count-unloaded'),
      stat('failed to load', number(failed), failed ? 'bad' : '', 'count-failed'),
      stat('calls', number(calls), '', 'count-calls'),
      stat('errors and panics', number(errors), errors ? 'bad' : '', 'count-errors'),
      stat('calls per second', callRate, '', 'rate-calls'),
      stat('errors per second', errorRate, errorRate !== '—' && errorRate !== '0.0' ? 'bad' : '', 'rate-errors')
    );
    replaceChildren(failures, failed ? failuresCard(data.failures) : null);
    if (!plugins.length) {
      emptyRow(latency.tbody, 6, 'No plugins yet: put plugins in the base directory.');
      return;
    }
    replaceChildren(latency.tbody, plugins.map(latencyRow));
  }

  return {
    refresh,
    leave: () => {
      stopListening();
      charts.stop();
    },
  };
}

// Per second, from two totals `seconds` apart; a dash when there is no earlier total or the
// total went down (a plugin was unloaded or loaded afresh).
function rate(now, before, seconds) {
  if (before === null || seconds <= 0 || now < before) return '—';
  const perSecond = (now - before) / seconds;
  return perSecond >= 10 ? number(Math.round(perSecond)) : perSecond.toFixed(1);
}

function latencyRow(p) {
  const m = p.metrics;
  return h(
    'tr',
    {},
    h('td', {}, h('a', { href: pluginHref(p.name), text: p.name })),
    h('td', {}, stateBadge(p.state)),
    h('td', { class: 'num', text: m ? number(m.calls) : '—' }),
    h('td', { class: 'num', text: m ? number(m.errors + m.panics) : '—' }),
    h('td', { class: 'num', text: m && m.latency.count ? duration(m.latency.p50_ns) : '—' }),
    h('td', { class: 'num', text: m && m.latency.count ? duration(m.latency.p99_ns) : '—' })
  );
}

function eventSummary(e) {
  switch (e.event) {
    case 'loading':
      return 'loading version ' + dash(e.version) + ' (its routes answer 503 until it serves)';
    case 'load_abandoned':
      return 'its load did not finish: its routes are free again';
    case 'loaded':
      return 'loaded version ' + dash(e.version);
    case 'load_failed':
      return 'failed to load from ' + dash(e.origin) + ': ' + dash(e.error);
    case 'upgraded':
      return 'upgraded ' + dash(e.from) + ' → ' + dash(e.to);
    case 'upgrade_refused':
      return 'upgrade refused: ' + dash(e.error);
    case 'unloaded':
      return 'unloaded version ' + dash(e.version);
    default:
      return JSON.stringify(e);
  }
}

function eventItem(e) {
  const failed = e.event === 'load_failed' || e.event === 'upgrade_refused';
  return h(
    'li',
    { class: 'event' + (failed ? ' event-bad' : ''), 'data-testid': 'event' },
    h('time', { class: 'event-time', text: time(e.at_unix_ms), title: dateTime(e.at_unix_ms) }),
    h('span', { class: 'badge badge-' + String(e.event || 'unknown').replace(/[^a-z_]/g, ''), text: String(e.event || '?').replace('_', ' ') }),
    e.plugin ? h('a', { class: 'event-plugin', href: pluginHref(e.plugin), text: e.plugin }) : null,
    h('span', { class: 'event-text', text: eventSummary(e) })
  );
}
