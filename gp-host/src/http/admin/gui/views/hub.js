// The hub page (#/hub): searches the OCI registry the server was started with, and installs
// or upgrades a plugin from it with one confirmed click.

import { perform } from '../actions.js';
import { api } from '../api.js';
import { ask } from '../confirm.js';
import { dash, h, pluginHref, replaceChildren, setText } from '../dom.js';
import { currentPlugin, loadPlugins } from '../store.js';
import { emptyRow, errorBox, section, showError, table } from './parts.js';

export function hubPage(app) {
  const problem = errorBox('hub-error');
  const where = h('p', { class: 'muted', 'data-testid': 'hub-registry', text: 'Asking the server which registry it searches…' });
  const input = h('input', { type: 'search', 'data-testid': 'hub-query', placeholder: 'name or description (empty: every plugin)', autocomplete: 'off', spellcheck: 'false', 'aria-label': 'Search the registry' });
  const button = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'hub-search', text: 'Search', disabled: true });
  const form = h('form', { class: 'try-row', 'data-testid': 'hub-form' }, input, button);
  const results = table(['Plugin', 'Newest', 'Versions', 'Description', 'Here', ''], 'hub-table');
  const skipped = h('p', { class: 'muted', 'data-testid': 'hub-skipped', hidden: true });
  app.append(
    h('h1', { text: 'Hub' }),
    where,
    problem,
    section('Search', form),
    section('Plugins in the registry', results.el, skipped)
  );
  emptyRow(results.tbody, 6, 'No search yet.');
  let found = null; // the last search's answer

  async function search() {
    button.disabled = true;
    emptyRow(results.tbody, 6, 'Searching…');
    try {
      found = await api('GET', '/hub/search?q=' + encodeURIComponent(input.value.trim()));
      showError(problem, null);
    } catch (e) {
      found = null;
      showError(problem, e);
      emptyRow(results.tbody, 6, 'The search failed.');
      return;
    } finally {
      button.disabled = false;
    }
    draw();
  }

  function draw() {
    if (!found) return;
    const plugins = found.plugins || [];
    const other = found.skipped || [];
    skipped.hidden = !other.length;
    setText(skipped, other.length ? 'Not gp plugins: ' + other.map((s) => s.repository + ' (' + s.reason + ')').join('; ') : '');
    if (!plugins.length) {
      emptyRow(results.tbody, 6, 'No plugin matches.');
      return;
    }
    replaceChildren(results.tbody, plugins.map(hubRow));
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    search();
  });

  (async () => {
    let info;
    try {
      info = await api('GET', '/hub');
    } catch (e) {
      showError(problem, e);
      return;
    }
    if (!info || !info.registry) {
      setText(where, 'No registry is configured. Start gp serve with --registry HOST[:PORT]/NAMESPACE (or set GP_REGISTRY) to search one here.');
      return;
    }
    setText(where, 'Plugins published in ' + info.registry + '. Installing one verifies it exactly as gp install does.');
    button.disabled = false;
    search();
  })();

  async function refresh() {
    try {
      await loadPlugins();
    } catch (e) {
      return;
    }
    draw();
  }

  return { refresh };
}

// A search result `p`, with what is here of it and the install or upgrade it offers.
function hubRow(p) {
  const newest = p.newest_version;
  const here = currentPlugin(p.name);
  let action;
  if (!newest) action = h('span', { class: 'muted', text: 'no version tag' });
  // What gp install would refuse is not offered: the search says why.
  else if (p.refused) action = h('span', { class: 'muted', 'data-testid': 'hub-refused-' + p.name, text: 'refused: ' + p.refused });
  else if (!here) action = hubButton('install', p, newest, null);
  else if (compareVersions(here.version, newest) < 0) action = hubButton('upgrade', p, newest, here.version);
  else action = h('span', { class: 'muted', 'data-testid': 'hub-current-' + p.name, text: compareVersions(here.version, newest) === 0 ? 'up to date' : 'newer here' });
  return h(
    'tr',
    { 'data-testid': 'hub-row-' + p.name },
    h('td', {}, here ? h('a', { href: pluginHref(p.name), text: p.name }) : p.name),
    h('td', { class: 'mono', text: dash(newest) }),
    h('td', { class: 'num', text: String((p.versions || []).length) }),
    h('td', { text: dash(p.description) }),
    h('td', { class: 'mono', 'data-testid': 'hub-here-' + p.name, text: here ? here.version + ' (' + here.state + ')' : '—' }),
    h('td', {}, action)
  );
}

function hubButton(kind, p, newest, current) {
  const verb = kind === 'install' ? 'Install' : 'Upgrade';
  return h('button', {
    type: 'button',
    class: 'btn btn-small' + (kind === 'install' ? ' btn-primary' : ''),
    'data-testid': 'hub-' + kind + '-' + p.name,
    text: kind === 'install' ? 'Install ' + newest : 'Upgrade to ' + newest,
    onclick: async () => {
      const answer = await ask({
        title: verb + ' ' + p.name + ' ' + newest + '?',
        text:
          'gp downloads ' + p.newest + ', checks the manifest digest, the artifact type and the package size and digest, then verifies the package as any .plg (checksums, signature, the plugin inside) and ' +
          (current ? 'swaps it in for ' + current + '; calls in flight finish on the old version.' : 'loads it.'),
        yes: verb,
      });
      if (!answer) return;
      await perform(verb + ' ' + p.name, () => api('POST', '/plugins', { url: p.newest }));
    },
  });
}

// -1, 0 or 1: semver precedence of two versions (build metadata ignored).
function compareVersions(a, b) {
  const split = (v) => {
    const [core, pre] = String(v).split('+')[0].split(/-(.*)/s);
    return { nums: core.split('.').map((x) => parseInt(x, 10) || 0), pre: pre ? pre.split('.') : [] };
  };
  const x = split(a);
  const y = split(b);
  for (let i = 0; i < 3; i++) {
    if (x.nums[i] !== y.nums[i]) return x.nums[i] < y.nums[i] ? -1 : 1;
  }
  if (!x.pre.length || !y.pre.length) return x.pre.length === y.pre.length ? 0 : x.pre.length ? -1 : 1;
  for (let i = 0; i < Math.max(x.pre.length, y.pre.length); i++) {
    if (x.pre[i] === undefined) return -1;
    if (y.pre[i] === undefined) return 1;
    const m = /^\d+$/.test(x.pre[i]);
    const n = /^\d+$/.test(y.pre[i]);
    if (m && n && +x.pre[i] !== +y.pre[i]) return +x.pre[i] < +y.pre[i] ? -1 : 1;
    if (m !== n) return m ? -1 : 1;
    if (x.pre[i] !== y.pre[i]) return x.pre[i] < y.pre[i] ? -1 : 1;
  }
  return 0;
}
