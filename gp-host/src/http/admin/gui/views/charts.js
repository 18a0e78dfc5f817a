// The overview's charts: each plugin's calls per second, errors per second and p99 latency
// over the last 15 minutes, as SVG line charts. The history comes from GET /history once,
// then each new sample from the event stream (`"event": "history"`), so the charts move
// without polling.

import { api } from '../api.js';
import { duration, h, replaceChildren, svg } from '../dom.js';
import { listenToHistory } from '../events.js';

const WINDOW_MS = 15 * 60 * 1000;
const COLOURS = 8; // series-0 … series-7 in panels.css

const KINDS = [
  { key: 'calls_per_s', title: 'Calls per second', testid: 'chart-calls', format: rateText },
  { key: 'errors_per_s', title: 'Errors per second', testid: 'chart-errors', format: rateText },
  { key: 'p99_ns', title: 'p99 latency', testid: 'chart-p99', format: duration },
];

// The charts' holder; `start()` loads the history and follows it, `stop()` stops following.
export function historyCharts() {
  const el = h('div', { class: 'charts', 'data-testid': 'history-charts' });
  let samples = []; // oldest first: { at_unix_ms, plugins: { name: point } }
  let stopListening = null;

  function draw() {
    const names = [...new Set(samples.flatMap((s) => Object.keys(s.plugins || {})))].sort();
    if (!samples.length || !names.length) {
      replaceChildren(el, h('p', { class: 'muted', 'data-testid': 'charts-empty', text: 'No samples yet: the server takes one every few seconds, and keeps 15 minutes.' }));
      return;
    }
    const now = Math.max(Date.now(), samples[samples.length - 1].at_unix_ms);
    replaceChildren(
      el,
      legend(names),
      h('div', { class: 'chart-row' }, KINDS.map((kind) => chart(kind, names, samples, now)))
    );
  }

  function add(sample) {
    samples.push(sample);
    const from = sample.at_unix_ms - WINDOW_MS;
    samples = samples.filter((s) => s.at_unix_ms >= from);
    draw();
  }

  async function start() {
    stopListening = listenToHistory(add);
    try {
      const history = await api('GET', '/history');
      // Samples the stream brought meanwhile are newer: keep them after the loaded ones.
      const loaded = (history && history.samples) || [];
      const last = loaded.length ? loaded[loaded.length - 1].at_unix_ms : 0;
      samples = loaded.concat(samples.filter((s) => s.at_unix_ms > last));
    } catch (e) {
      // The stream still brings new samples.
    }
    draw();
  }

  function stop() {
    if (stopListening) stopListening();
  }

  draw();
  return { el, start, stop };
}

function rateText(x) {
  return x >= 10 ? String(Math.round(x)) : x.toFixed(1);
}

function legend(names) {
  return h(
    'ul',
    { class: 'legend' },
    names.map((name, i) => h('li', {}, h('span', { class: 'swatch series-' + (i % COLOURS) }), name))
  );
}

// One chart: a line per plugin, time along x (the last 15 minutes), value up y.
function chart(kind, names, samples, now) {
  const width = 360;
  const height = 170;
  const left = 52;
  const right = 10;
  const top = 12;
  const bottom = 26;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const from = now - WINDOW_MS;
  let max = 0;
  for (const s of samples) {
    for (const name of names) {
      const p = s.plugins[name];
      const v = p ? p[kind.key] : null;
      if (typeof v === 'number' && v > max) max = v;
    }
  }
  const top_ = max > 0 ? max * 1.1 : 1;
  const x = (t) => left + ((t - from) / WINDOW_MS) * plotW;
  const y = (v) => top + plotH - (v / top_) * plotH;
  const root = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, class: 'history-chart', role: 'img', 'aria-label': kind.title + ', last 15 minutes', preserveAspectRatio: 'xMidYMid meet' });
  root.append(svg('title', { text: kind.title + ', last 15 minutes' }));
  for (const f of [0, 0.5, 1]) {
    const yy = top + plotH - f * plotH;
    root.append(svg('line', { x1: left, x2: width - right, y1: yy, y2: yy, class: 'grid' }));
    root.append(svg('text', { x: left - 5, y: yy + 4, 'text-anchor': 'end', class: 'axis', text: max > 0 ? kind.format(f * top_) : f === 0 ? '0' : '' }));
  }
  for (const [t, label] of [[from, '−15 min'], [from + WINDOW_MS / 3, '−10'], [from + (2 * WINDOW_MS) / 3, '−5'], [now, 'now']]) {
    root.append(svg('text', { x: x(t), y: height - 8, 'text-anchor': t === now ? 'end' : t === from ? 'start' : 'middle', class: 'axis', text: label }));
  }
  names.forEach((name, i) => {
    // A gap where the plugin has no value (not loaded, or no timed call for p99).
    let segment = [];
    const segments = [segment];
    let last = null;
    for (const s of samples) {
      const p = s.plugins[name];
      const v = p ? p[kind.key] : null;
      if (typeof v !== 'number') {
        if (segment.length) segments.push((segment = []));
        continue;
      }
      segment.push(x(s.at_unix_ms).toFixed(1) + ',' + y(v).toFixed(1));
      last = v;
    }
    const series = svg('g', { class: 'series series-' + (i % COLOURS), 'data-testid': 'series', 'data-plugin': name, 'data-last': last === null ? '' : String(last) });
    series.append(svg('title', { text: name + ': ' + (last === null ? '—' : kind.format(last)) + ' (last sample)' }));
    for (const points of segments) {
      if (points.length === 1) {
        const [cx, cy] = points[0].split(',');
        series.append(svg('circle', { cx, cy, r: 2.5 }));
      } else if (points.length > 1) {
        series.append(svg('polyline', { points: points.join(' ') }));
      }
    }
    root.append(series);
  });
  return h('figure', { class: 'history', 'data-testid': kind.testid }, h('figcaption', { text: kind.title }), root);
}
