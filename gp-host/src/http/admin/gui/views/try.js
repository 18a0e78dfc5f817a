// The "Try it" form on a plugin's page: calls the plugin directly (POST .../invoke) with a
// label and values, and shows the values it leaves in the context, or why it failed.

import { api, errorText, pluginPath } from '../api.js';
import { h, replaceChildren, setText } from '../dom.js';
import { refreshNow } from '../refresh.js';

// The form for plugin `name`, built once so that what is typed survives refreshes, and
// `showLabels`, which offers the labels of the plugin's routes.
export function tryForm(name) {
  const labels = h('datalist', { id: 'try-labels' });
  const labelInput = h('input', { type: 'text', id: 'try-label', 'data-testid': 'try-label', list: 'try-labels', placeholder: 'none', autocomplete: 'off', spellcheck: 'false' });
  const valuesInput = h('textarea', { id: 'try-values', 'data-testid': 'try-values', rows: 6, spellcheck: 'false' });
  valuesInput.value = '{}';
  const timeoutInput = h('input', { type: 'number', id: 'try-timeout', 'data-testid': 'try-timeout', min: 1, max: 60000, value: 5000 });
  const runButton = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'try-run', text: 'Run' });
  const result = h('pre', { class: 'try-result', 'data-testid': 'try-result', hidden: true });
  const resultLabel = h('p', { class: 'try-result-label small', hidden: true });
  const form = h(
    'form',
    { class: 'try', 'data-testid': 'try-form', novalidate: true },
    h('div', { class: 'try-row' }, h('label', { class: 'field' }, h('span', { text: 'Label' }), labelInput, labels), h('label', { class: 'field field-narrow' }, h('span', { text: 'Timeout (ms)' }), timeoutInput)),
    h('label', { class: 'field' }, h('span', { text: 'Values (a JSON object: the call context\u2019s values)' }), valuesInput),
    h('div', { class: 'try-row' }, runButton),
    resultLabel,
    result
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    tryIt();
  });

  function showResult(ok, label, text) {
    result.className = 'try-result ' + (ok ? 'try-ok' : 'try-error');
    result.setAttribute('data-ok', ok ? 'true' : 'false');
    setText(resultLabel, label);
    resultLabel.hidden = false;
    setText(result, text);
    result.hidden = false;
  }

  async function tryIt() {
    let values;
    try {
      values = valuesInput.value.trim() ? JSON.parse(valuesInput.value) : {};
    } catch (e) {
      showResult(false, 'Not sent:', 'The values are not valid JSON: ' + e.message);
      return;
    }
    if (values === null || typeof values !== 'object' || Array.isArray(values)) {
      showResult(false, 'Not sent:', 'The values must be a JSON object, such as {"key": "value"}.');
      return;
    }
    const label = labelInput.value.trim();
    const timeout = Math.max(1, Math.min(60000, parseInt(timeoutInput.value, 10) || 5000));
    runButton.disabled = true;
    setText(runButton, 'Running…');
    const started = performance.now();
    try {
      const answer = await api('POST', pluginPath(name) + '/invoke', { label: label || null, values, timeout_ms: timeout });
      const took = Math.round(performance.now() - started);
      showResult(true, 'Returned in ' + took + ' ms, with these values:', JSON.stringify(answer && answer.values !== undefined ? answer.values : answer, null, 2));
    } catch (e) {
      showResult(false, 'The call failed:', errorText(e));
    } finally {
      runButton.disabled = false;
      setText(runButton, 'Run');
      refreshNow();
    }
  }

  // Offers the labels of `routes` in the label field (rebuilt only when they change).
  function showLabels(routes) {
    const known = routes.map((r) => r.label).join('\n');
    if (labels.getAttribute('data-known') !== known) {
      labels.setAttribute('data-known', known);
      replaceChildren(labels, [...new Set(routes.map((r) => r.label))].map((l) => h('option', { value: l })));
    }
  }

  return { el: form, showLabels };
}
