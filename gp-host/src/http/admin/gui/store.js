// The last list of plugins the server gave (GET /plugins), shared by the views: the hub
// compares versions against it, an action button describes the plugin as last seen.

import { api } from './api.js';

let lastPlugins = null; // the last GET /plugins answer

export function currentPlugin(name) {
  return lastPlugins && lastPlugins.plugins ? lastPlugins.plugins.find((p) => p.name === name) : null;
}

export async function loadPlugins() {
  const data = await api('GET', '/plugins');
  lastPlugins = data;
  return data;
}

// Puts a fresher answer for plugin `name` (GET /plugins/NAME) in the list, where it is listed.
export function rememberPlugin(name, p) {
  if (lastPlugins && lastPlugins.plugins) {
    const i = lastPlugins.plugins.findIndex((x) => x.name === name);
    if (i >= 0) lastPlugins.plugins[i] = p;
  }
}

export function forgetPlugins() {
  lastPlugins = null;
}
