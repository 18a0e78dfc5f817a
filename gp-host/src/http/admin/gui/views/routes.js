// The routes page (#/routes): the HTTP routes the plugin server answers now, and those it
// refused.

import { api } from '../api.js';
import { dash, h, pluginHref, replaceChildren } from '../dom.js';
import { emptyRow, errorBox, loadShown, section, table } from './parts.js';

export function routesPage(app) {
  const problem = errorBox('routes-error');
  const served = table(['Method', 'Route', 'Plugin', 'Label'], 'routes-table');
  const refused = table(['Origin', 'Why'], 'refused-table');
  app.append(
    h('h1', { text: 'Routes' }),
    h('p', { class: 'muted', text: 'The HTTP routes the plugin server answers now, and the routes it refused.' }),
    problem,
    section('Served', served.el),
    section('Refused', refused.el)
  );

  async function refresh() {
    const data = await loadShown(problem, () => api('GET', '/routes'));
    if (data === undefined) return;
    const routes = data.routes || [];
    if (!routes.length) emptyRow(served.tbody, 4, 'No routes are served.');
    else
      replaceChildren(
        served.tbody,
        routes.map((r) =>
          h('tr', {}, h('td', {}, h('span', { class: 'method', text: r.method })), h('td', { class: 'mono', text: r.route }), h('td', {}, h('a', { href: pluginHref(r.plugin), text: r.plugin })), h('td', { class: 'mono', text: r.label }))
        )
      );
    const no = data.refused || [];
    if (!no.length) emptyRow(refused.tbody, 2, 'None.');
    else replaceChildren(refused.tbody, no.map((r) => h('tr', {}, h('td', { class: 'mono', text: dash(r.origin) }), h('td', { class: 'error-text', text: dash(r.reason) }))));
  }

  return { refresh };
}
