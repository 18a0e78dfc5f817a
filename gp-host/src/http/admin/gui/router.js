// Which page the location hash asks for: `route()` gives the nav entry to mark and the
// function that builds the page into the main element.

import { h } from './dom.js';
import { hubPage } from './views/hub.js';
import { overview } from './views/overview.js';
import { pluginPage } from './views/plugin.js';
import { plugins } from './views/plugins.js';
import { routesPage } from './views/routes.js';

// `{ key, make }`: `key` matches a nav link's data-view; `make(app)` builds the page into
// `app` and gives its `{ refresh(), leave() }`.
export function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const parts = hash.split('/').filter(Boolean);
  if (parts.length === 0) return { key: 'overview', make: overview };
  if (parts[0] === 'plugins' && parts.length === 1) return { key: 'plugins', make: plugins };
  if (parts[0] === 'plugins' && parts.length === 2) {
    let name;
    try {
      name = decodeURIComponent(parts[1]);
    } catch (e) {
      return { key: 'missing', make: notFound };
    }
    return { key: 'plugins', make: (app) => pluginPage(app, name) };
  }
  if (parts[0] === 'routes' && parts.length === 1) return { key: 'routes', make: routesPage };
  if (parts[0] === 'hub' && parts.length === 1) return { key: 'hub', make: hubPage };
  return { key: 'missing', make: notFound };
}

function notFound(app) {
  app.append(h('h1', { text: 'Not found' }), h('p', {}, 'Nothing here. ', h('a', { href: '#/', text: 'Go to the overview' }), '.'));
  return {};
}
