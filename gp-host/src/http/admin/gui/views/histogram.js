// The latency histogram on a plugin's page, drawn as an SVG bar chart.

import { duration, h, number, replaceChildren, svg } from '../dom.js';

// The chart's holder, and `draw`, which redraws it only when the buckets changed.
export function histogramChart() {
  const chart = h('div', { class: 'chart', 'data-testid': 'histogram' });
  let histogramKey = null;

  function draw(buckets) {
    const key = JSON.stringify(buckets || []);
    if (key === histogramKey) return;
    histogramKey = key;
    if (!buckets || !buckets.length) {
      replaceChildren(chart, h('p', { class: 'muted', text: 'No timed calls yet: run one with "Try it" below.' }));
      return;
    }
    replaceChildren(chart, histogram(buckets));
  }

  return { el: chart, draw };
}

// The histogram as an SVG bar chart: one bar per non-empty bucket, in order.
function histogram(buckets) {
  const width = 760;
  const height = 220;
  const left = 48;
  const right = 12;
  const top = 14;
  const bottom = 46;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const max = Math.max(...buckets.map((b) => b[1]), 1);
  const n = buckets.length;
  const slot = plotW / n;
  const barW = Math.max(2, Math.min(48, slot * 0.8));
  const root = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, class: 'histogram', role: 'img', 'aria-label': 'Latency histogram: ' + n + ' buckets', preserveAspectRatio: 'xMidYMid meet' });
  root.append(svg('title', { text: 'Calls by latency bucket' }));
  // Grid lines and the count axis.
  for (const f of [0, 0.5, 1]) {
    const y = top + plotH - f * plotH;
    const value = f === 0.5 && max < 2 ? null : Math.round(f * max);
    root.append(svg('line', { x1: left, x2: width - right, y1: y, y2: y, class: 'grid' }));
    if (value !== null) root.append(svg('text', { x: left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis', text: number(value) }));
  }
  // Label at most about 10 buckets, evenly.
  const every = Math.ceil(n / 10);
  buckets.forEach(([bound, count], i) => {
    const x = left + i * slot + (slot - barW) / 2;
    const barH = Math.max(1, (count / max) * plotH);
    const bar = svg('rect', { x, y: top + plotH - barH, width: barW, height: barH, rx: 2, class: 'bar', 'data-testid': 'histogram-bar' });
    bar.append(svg('title', { text: '≤ ' + duration(bound) + ': ' + number(count) + (count === 1 ? ' call' : ' calls') }));
    root.append(bar);
    if (i % every === 0 || i === n - 1) {
      const cx = left + i * slot + slot / 2;
      root.append(svg('text', { x: cx, y: top + plotH + 16, 'text-anchor': 'middle', class: 'axis', text: duration(bound) }));
    }
  });
  root.append(svg('text', { x: left + plotW / 2, y: height - 6, 'text-anchor': 'middle', class: 'axis-title', text: 'latency (bucket upper bound)' }));
  root.append(svg('text', { x: 12, y: top + plotH / 2, 'text-anchor': 'middle', class: 'axis-title', transform: 'rotate(-90 12 ' + (top + plotH / 2) + ')', text: 'calls' }));
  return root;
}
