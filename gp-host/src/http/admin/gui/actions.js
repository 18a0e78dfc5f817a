// What an operator can do to a plugin (reload, roll back, disable, enable, load, unload,
// upgrade from a file): the buttons, the question each asks first, and `perform`, which runs
// a change and reports it in the status area.

import { api, ApiError, errorText, pluginPath } from './api.js';
import { ask } from './confirm.js';
import { bytes, dash, h, replaceChildren } from './dom.js';
import { refreshNow, setBusy } from './refresh.js';
import { describe, status } from './status.js';
import { currentPlugin } from './store.js';

// POST /plugins/NAME/VERB with an empty JSON body.
const post = (verb) => (n) => api('POST', pluginPath(n) + '/' + verb, {});

// Each action's question is "LABEL NAME?", answered with a button saying LABEL.
const ACTIONS = {
  reload: {
    label: 'Reload',
    text: (n) => 'gp loads ' + n + ' again from its folder or package. A newer build there replaces the running one; calls in flight finish on the old one.',
    run: post('reload'),
  },
  rollback: {
    label: 'Roll back',
    text: (n, p) => n + ' goes back to version ' + dash(p && p.rollback_to) + ', the version before its last upgrade.',
    danger: true,
    run: post('rollback'),
  },
  disable: {
    label: 'Disable',
    text: (n) => n + ' is unloaded and stays off, across restarts, until it is enabled again. Its routes answer 503 meanwhile.',
    danger: true,
    reason: true,
    run: (n, reason) => api('POST', pluginPath(n) + '/disable', reason ? { reason } : {}),
  },
  enable: {
    label: 'Enable',
    text: (n) => 'gp loads ' + n + ' again from its folder or package.',
    run: post('enable'),
  },
  load: {
    label: 'Load',
    text: (n) => 'gp loads ' + n + ' again from the folder or package it was unloaded from.',
    run: post('load'),
  },
  unload: {
    label: 'Unload',
    text: (n) => n + ' stops serving now (calls in flight finish first). It comes back at the next load of the plugin directory or restart; disable it to keep it off.',
    danger: true,
    run: (n) => api('DELETE', pluginPath(n)),
  },
};

async function act(action, name, plugin) {
  const spec = ACTIONS[action];
  const answer = await ask({
    title: spec.label + ' ' + name + '?',
    text: spec.text(name, plugin),
    yes: spec.label,
    danger: spec.danger,
    reason: spec.reason,
  });
  if (!answer) return;
  await perform(spec.label + ' ' + name, () => spec.run(name, answer.reason));
}

async function upgrade(name, file, input) {
  const answer = await ask({
    title: 'Upgrade ' + name + '?',
    text: 'Upload ' + file.name + ' (' + bytes(file.size) + '). gp verifies the package, keeps it where ' + name + ' comes from, and swaps it in if it holds a newer version.',
    yes: 'Upgrade',
  });
  if (input) input.value = '';
  if (!answer) return;
  await perform('Upgrade ' + name, () => api('POST', pluginPath(name) + '/upgrade', file));
}

// Runs the change `run`, saying in the status area that `what` is under way, then how it
// went; the view is refreshed after it either way.
export async function perform(what, run) {
  setBusy(true);
  status('busy', what + '…');
  try {
    const answer = await run();
    status('ok', what + ': ' + describe(answer));
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) status('error', what + ' failed: ' + errorText(e));
  } finally {
    setBusy(false);
    refreshNow();
  }
}

function actionButton(action, plugin) {
  return h('button', {
    type: 'button',
    class: 'btn btn-small' + (ACTIONS[action].danger ? ' btn-danger-outline' : ''),
    'data-testid': action + '-' + plugin.name,
    'data-action': action,
    onclick: () => act(action, plugin.name, currentPlugin(plugin.name) || plugin),
    text: ACTIONS[action].label,
  });
}

function upgradeButton(name) {
  const input = h('input', {
    type: 'file',
    accept: '.plg,application/octet-stream',
    class: 'file-input',
    'data-testid': 'upgrade-' + name,
    'aria-label': 'Upgrade ' + name + ' with a .plg package',
    onchange: (e) => {
      const file = e.target.files && e.target.files[0];
      if (file) upgrade(name, file, e.target);
    },
  });
  return h('label', { class: 'btn btn-small file-button', title: 'Upload a .plg package to upgrade ' + name }, 'Upgrade…', input);
}

// Which actions a plugin in `state` offers.
export function actionsFor(state) {
  if (state === 'serving') return ['reload', 'upgrade', 'disable', 'unload'];
  if (state === 'disabled') return ['enable'];
  if (state === 'draining' || state === 'loading') return [];
  return ['load', 'upgrade'];
}

// Shows the buttons for `list` (names from `actionsFor`) on plugin `p` in `holder`, rebuilt
// only when the list differs from the one shown (`shown`, what this returned last time), so
// that a file being chosen survives a refresh. Returns the list shown, for the next call.
export function showActions(holder, list, p, shown) {
  const key = list.join(',');
  if (key !== shown) {
    replaceChildren(holder, list.map((a) => (a === 'upgrade' ? upgradeButton(p.name) : actionButton(a, p))));
  }
  return key;
}
