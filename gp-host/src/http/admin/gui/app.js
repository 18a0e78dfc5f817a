// The gp management GUI: plain JavaScript, no build step, nothing fetched from elsewhere.
// It talks to /api/v1 with the token the operator enters once (kept in session storage,
// never in a URL). Every piece of data goes into the page as text (textContent), never as
// markup, and the content security policy forbids inline scripts and styles.
'use strict';

(function () {
  const API = '/api/v1';
  const TOKEN_KEY = 'gp.admin.token';
  const REFRESH_MS = 2000;
  const MAX_EVENTS = 100;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const app = document.getElementById('app');
  const nav = document.getElementById('nav');
  const session = document.getElementById('session');
  const live = document.getElementById('live');

  // ---------------------------------------------------------------- small helpers

  // An element: `attrs` become attributes (`on*` functions become listeners, `text` its
  // text), `children` are nodes or strings (inserted as text).
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith('on') && typeof value === 'function') {
        el.addEventListener(key.slice(2), value);
      } else if (key === 'text') {
        el.textContent = String(value);
      } else if (value === true) {
        el.setAttribute(key, '');
      } else {
        el.setAttribute(key, String(value));
      }
    }
  }

  function append(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function replaceChildren(el, ...children) {
    clear(el);
    append(el, children);
  }

  function setText(el, text) {
    const value = text === null || text === undefined ? '' : String(text);
    if (el.textContent !== value) el.textContent = value;
  }

  function dash(value) {
    return value === null || value === undefined || value === '' ? '—' : String(value);
  }

  function number(value) {
    return typeof value === 'number' ? value.toLocaleString('en-US') : '—';
  }

  // Nanoseconds as ns, µs, ms or s, with about three significant digits.
  function duration(ns) {
    if (typeof ns !== 'number' || !isFinite(ns)) return '—';
    const units = [[1e9, 's'], [1e6, 'ms'], [1e3, 'µs']];
    for (const [scale, unit] of units) {
      if (ns >= scale) return trim(ns / scale) + ' ' + unit;
    }
    return Math.round(ns) + ' ns';
  }

  function trim(x) {
    return x >= 100 ? String(Math.round(x)) : x >= 10 ? x.toFixed(1).replace(/\.0$/, '') : x.toFixed(2).replace(/\.?0+$/, '');
  }

  function time(ms) {
    if (typeof ms !== 'number') return '—';
    const d = new Date(ms);
    return d.toLocaleTimeString([], { hour12: false });
  }

  function dateTime(ms) {
    if (typeof ms !== 'number') return '—';
    return new Date(ms).toLocaleString([], { hour12: false });
  }

  function pluginHref(name) {
    return '#/plugins/' + encodeURIComponent(name);
  }

  function bytes(n) {
    if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + ' MiB';
    if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + ' KiB';
    return n + ' bytes';
  }

  // ---------------------------------------------------------------- the token

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch (e) {
      return memoryToken;
    }
  }
  let memoryToken = '';

  function setToken(value) {
    memoryToken = value;
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      // Storage refused (private mode): keep it in memory for this page only.
    }
  }

  // ---------------------------------------------------------------- the API

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // One API call. `body`: an object (sent as JSON), a Blob/File (sent as octet-stream), or
  // undefined. Every change is sent with a content type, as the API requires.
  async function api(method, path, body) {
    const used = token();
    const headers = { Authorization: 'Bearer ' + used, Accept: 'application/json' };
    let payload;
    if (method !== 'GET') {
      if (body instanceof Blob) {
        headers['Content-Type'] = 'application/octet-stream';
        payload = body;
      } else {
        headers['Content-Type'] = 'application/json';
        payload = JSON.stringify(body === undefined ? {} : body);
      }
    }
    let response;
    try {
      response = await fetch(API + path, {
        method,
        headers,
        body: payload,
        cache: 'no-store',
        credentials: 'omit',
        redirect: 'error',
      });
    } catch (e) {
      throw new ApiError(0, 'cannot reach the gp server (' + e.message + ')');
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      const message = (data && typeof data.error === 'string' && data.error) || text || response.statusText || 'request failed';
      // Back to the prompt, unless another token was entered meanwhile.
      if (response.status === 401 && token() === used) {
        signOut(message);
      }
      throw new ApiError(response.status, message);
    }
    return data;
  }

  function errorText(e) {
    if (e instanceof ApiError && e.status) return e.message + ' (HTTP ' + e.status + ')';
    return e && e.message ? e.message : String(e);
  }

  // ---------------------------------------------------------------- status area

  const statusBox = document.getElementById('status');
  const statusText = document.getElementById('status-text');
  document.getElementById('status-close').addEventListener('click', () => {
    statusBox.hidden = true;
  });

  let statusTimer = null;

  // Shows `message` in the status area; a success fades after a while, an error stays until
  // dismissed or replaced.
  function status(kind, message) {
    clearTimeout(statusTimer);
    statusBox.className = 'status status-' + kind;
    statusBox.setAttribute('data-kind', kind);
    setText(statusText, '[' + time(Date.now()) + '] ' + message);
    statusBox.hidden = false;
    if (kind === 'ok') {
      statusTimer = setTimeout(() => {
        statusBox.hidden = true;
      }, 20000);
    }
  }

  // An API answer as one readable line: `upgraded (from: 1.0.0, to: 1.1.0)`.
  function describe(answer) {
    if (!answer || typeof answer !== 'object') return String(answer);
    const rest = Object.entries(answer)
      .filter(([k]) => k !== 'result')
      .map(([k, v]) => k + ': ' + (v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v)))
      .join(', ');
    if (typeof answer.result !== 'string') return rest;
    return rest ? answer.result + ' (' + rest + ')' : answer.result;
  }

  // ---------------------------------------------------------------- confirmation dialog

  const confirmBox = document.getElementById('confirm');
  const confirmTitle = document.getElementById('confirm-title');
  const confirmText = document.getElementById('confirm-text');
  const confirmYes = document.getElementById('confirm-yes');
  const confirmNo = document.getElementById('confirm-no');
  const reasonField = document.getElementById('confirm-reason-field');
  const reasonInput = document.getElementById('confirm-reason');
  let confirmDone = null;

  // Asks in the page. Resolves to `{ reason }` when confirmed, `null` when cancelled.
  function ask({ title, text, yes, danger, reason }) {
    if (confirmDone) confirmDone(null);
    setText(confirmTitle, title);
    setText(confirmText, text);
    setText(confirmYes, yes || 'Confirm');
    confirmYes.className = 'btn ' + (danger ? 'btn-danger' : 'btn-primary');
    reasonField.hidden = !reason;
    reasonInput.value = '';
    confirmBox.hidden = false;
    (reason ? reasonInput : confirmNo).focus();
    return new Promise((resolve) => {
      confirmDone = (answer) => {
        confirmDone = null;
        confirmBox.hidden = true;
        resolve(answer);
      };
    });
  }

  confirmYes.addEventListener('click', () => {
    if (confirmDone) confirmDone({ reason: reasonInput.value.trim() });
  });
  confirmNo.addEventListener('click', () => {
    if (confirmDone) confirmDone(null);
  });
  confirmBox.addEventListener('click', (e) => {
    if (e.target === confirmBox && confirmDone) confirmDone(null);
  });
  document.addEventListener('keydown', (e) => {
    if (!confirmDone) return;
    if (e.key === 'Escape') confirmDone(null);
    if (e.key === 'Enter' && e.target === reasonInput) confirmDone({ reason: reasonInput.value.trim() });
  });

  // ---------------------------------------------------------------- plugin actions

  const ACTIONS = {
    reload: {
      label: 'Reload',
      title: (n) => 'Reload ' + n + '?',
      text: (n) => 'gp loads ' + n + ' again from its folder or package. A newer build there replaces the running one; calls in flight finish on the old one.',
      yes: 'Reload',
      run: (n) => api('POST', '/plugins/' + encodeURIComponent(n) + '/reload', {}),
    },
    rollback: {
      label: 'Roll back',
      title: (n) => 'Roll back ' + n + '?',
      text: (n, p) => n + ' goes back to version ' + dash(p && p.rollback_to) + ', the version before its last upgrade.',
      yes: 'Roll back',
      danger: true,
      run: (n) => api('POST', '/plugins/' + encodeURIComponent(n) + '/rollback', {}),
    },
    disable: {
      label: 'Disable',
      title: (n) => 'Disable ' + n + '?',
      text: (n) => n + ' is unloaded and stays off, across restarts, until it is enabled again. Its routes answer 503 meanwhile.',
      yes: 'Disable',
      danger: true,
      reason: true,
      run: (n, reason) => api('POST', '/plugins/' + encodeURIComponent(n) + '/disable', reason ? { reason } : {}),
    },
    enable: {
      label: 'Enable',
      title: (n) => 'Enable ' + n + '?',
      text: (n) => 'gp loads ' + n + ' again from its folder or package.',
      yes: 'Enable',
      run: (n) => api('POST', '/plugins/' + encodeURIComponent(n) + '/enable', {}),
    },
    load: {
      label: 'Load',
      title: (n) => 'Load ' + n + '?',
      text: (n) => 'gp loads ' + n + ' again from the folder or package it was unloaded from.',
      yes: 'Load',
      run: (n) => api('POST', '/plugins/' + encodeURIComponent(n) + '/load', {}),
    },
    unload: {
      label: 'Unload',
      title: (n) => 'Unload ' + n + '?',
      text: (n) => n + ' stops serving now (calls in flight finish first). It comes back at the next load of the plugin directory or restart; disable it to keep it off.',
      yes: 'Unload',
      danger: true,
      run: (n) => api('DELETE', '/plugins/' + encodeURIComponent(n)),
    },
  };

  let busy = false;

  async function act(action, name, plugin) {
    const spec = ACTIONS[action];
    const answer = await ask({
      title: spec.title(name),
      text: spec.text(name, plugin),
      yes: spec.yes,
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
    await perform('Upgrade ' + name, () => api('POST', '/plugins/' + encodeURIComponent(name) + '/upgrade', file));
  }

  async function perform(what, run) {
    busy = true;
    status('busy', what + '…');
    try {
      const answer = await run();
      status('ok', what + ': ' + describe(answer));
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) status('error', what + ' failed: ' + errorText(e));
    } finally {
      busy = false;
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
  function actionsFor(state) {
    if (state === 'serving') return ['reload', 'upgrade', 'disable', 'unload'];
    if (state === 'disabled') return ['enable'];
    if (state === 'draining') return [];
    return ['load', 'upgrade'];
  }

  // ---------------------------------------------------------------- data shared by the views

  let lastPlugins = null; // the last GET /plugins answer

  function currentPlugin(name) {
    return lastPlugins && lastPlugins.plugins ? lastPlugins.plugins.find((p) => p.name === name) : null;
  }

  async function loadPlugins() {
    const data = await api('GET', '/plugins');
    lastPlugins = data;
    return data;
  }

  // ---------------------------------------------------------------- the event stream

  const events = []; // newest first
  const eventListeners = new Set();
  let stream = null; // { abort }
  let backoff = 1000;

  function startEvents() {
    stopEvents();
    const controller = new AbortController();
    const handle = { controller, timer: null, stopped: false };
    stream = handle;
    connectEvents(handle);
  }

  function stopEvents() {
    if (!stream) return;
    stream.stopped = true;
    clearTimeout(stream.timer);
    stream.controller.abort();
    stream = null;
  }

  function setLive(kind, text) {
    live.className = 'live live-' + kind;
    setText(live, text);
  }

  async function connectEvents(handle) {
    setLive('connecting', 'events: connecting…');
    const used = token();
    let response;
    try {
      response = await fetch(API + '/events', {
        headers: { Authorization: 'Bearer ' + used, Accept: 'text/event-stream' },
        cache: 'no-store',
        credentials: 'omit',
        signal: handle.controller.signal,
      });
    } catch (e) {
      return retryEvents(handle);
    }
    if (response.status === 401) {
      const data = await response.json().catch(() => null);
      if (token() === used && stream === handle) signOut((data && data.error) || 'the token is not valid for this server');
      return;
    }
    if (!response.ok || !response.body) return retryEvents(handle);
    backoff = 1000;
    setLive('up', 'events: live');
    // The server sends the recent events first: start the list afresh on each connection.
    events.length = 0;
    notifyEvents(null);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          handleBlock(block);
        }
      }
    } catch (e) {
      // Aborted or cut: reconnect below unless stopped.
    }
    retryEvents(handle);
  }

  function retryEvents(handle) {
    if (handle.stopped || stream !== handle) return;
    setLive('down', 'events: reconnecting in ' + Math.round(backoff / 1000) + ' s');
    handle.timer = setTimeout(() => {
      if (!handle.stopped && stream === handle) connectEvents(handle);
    }, backoff);
    backoff = Math.min(backoff * 2, 30000);
  }

  function handleBlock(block) {
    const data = block
      .split('\n')
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).replace(/^ /, ''))
      .join('\n');
    if (!data) return; // a keep-alive comment
    let event;
    try {
      event = JSON.parse(data);
    } catch (e) {
      return;
    }
    events.unshift(event);
    if (events.length > MAX_EVENTS) events.length = MAX_EVENTS;
    notifyEvents(event);
  }

  let eventRefresh = null;
  function notifyEvents(event) {
    for (const listener of eventListeners) listener(event);
    // A change happened: refresh what is shown soon (once for a burst of events).
    if (event && !eventRefresh) {
      eventRefresh = setTimeout(() => {
        eventRefresh = null;
        refreshNow();
      }, 150);
    }
  }

  function eventSummary(e) {
    switch (e.event) {
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

  // ---------------------------------------------------------------- views

  let view = null; // { refresh(), leave() }
  let refreshing = false;
  let refreshTimer = null;

  let refreshAgain = false;

  // Refreshes the view now; if a refresh is under way, once more when it is done (so what an
  // action changed is shown at once, not at the next tick).
  function refreshNow() {
    if (!view || !view.refresh) return;
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    refreshAgain = false;
    Promise.resolve(view.refresh())
      .catch(() => {})
      .finally(() => {
        refreshing = false;
        if (refreshAgain) refreshNow();
      });
  }

  function startRefreshing() {
    clearInterval(refreshTimer);
    refreshTimer = setInterval(() => {
      if (!busy && !document.hidden) refreshNow();
    }, REFRESH_MS);
  }

  function section(title, ...children) {
    return h('section', { class: 'card' }, title ? h('h2', { text: title }) : null, children);
  }

  function errorBox(testid) {
    return h('p', { class: 'inline-error', 'data-testid': testid, hidden: true });
  }

  function showError(box, e) {
    if (!e) {
      box.hidden = true;
      return;
    }
    setText(box, errorText(e));
    box.hidden = false;
  }

  function stateBadge(state) {
    return h('span', { class: 'state state-' + String(state).replace(/[^a-z]/g, ''), text: dash(state) });
  }

  function table(headers, testid) {
    const tbody = h('tbody');
    const el = h('table', { class: 'table', 'data-testid': testid }, h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col', text: x })))), tbody);
    return { el, tbody };
  }

  function emptyRow(tbody, columns, text) {
    replaceChildren(tbody, h('tr', { class: 'empty' }, h('td', { colspan: columns, text })));
  }

  // Overview -----------------------------------------------------------------

  function overview() {
    const counts = h('div', { class: 'stats', 'data-testid': 'overview-counts' });
    const latency = table(['Plugin', 'State', 'Calls', 'Errors', 'p50', 'p99'], 'overview-latency');
    const eventList = h('ol', { class: 'events', 'data-testid': 'events' });
    const failures = h('div', { class: 'failures' });
    const problem = errorBox('overview-error');

    app.append(
      h('h1', { text: 'Overview' }),
      problem,
      counts,
      failures,
      h('div', { class: 'columns' }, section('Latency by plugin', latency.el), section('Recent events', h('p', { class: 'muted small', text: 'Loads, upgrades and unloads as they happen, newest first.' }), eventList))
    );

    function stat(label, value, kind, testid) {
      return h('div', { class: 'stat' + (kind ? ' stat-' + kind : ''), 'data-testid': testid }, h('div', { class: 'stat-value', text: value }), h('div', { class: 'stat-label', text: label }));
    }

    function drawEvents() {
      if (!events.length) {
        replaceChildren(eventList, h('li', { class: 'muted', text: 'No events yet.' }));
        return;
      }
      replaceChildren(eventList, events.slice(0, 30).map(eventItem));
    }
    const listener = () => drawEvents();
    eventListeners.add(listener);
    drawEvents();

    // Rates come from the difference between two refreshes.
    let previous = null; // { at, calls, errors }

    function rate(now, before, seconds) {
      if (before === null || seconds <= 0 || now < before) return '—';
      const perSecond = (now - before) / seconds;
      return perSecond >= 10 ? number(Math.round(perSecond)) : perSecond.toFixed(1);
    }

    async function refresh() {
      let data;
      try {
        data = await loadPlugins();
        showError(problem, null);
      } catch (e) {
        showError(problem, e);
        return;
      }
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
      replaceChildren(
        latency.tbody,
        plugins.map((p) => {
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
        })
      );
    }

    return {
      refresh,
      leave: () => eventListeners.delete(listener),
    };
  }

  function failuresCard(failures) {
    const t = table(['Origin', 'Error'], 'failures');
    append(
      t.tbody,
      failures.map((f) => h('tr', {}, h('td', { class: 'mono', text: dash(f.origin) }), h('td', { class: 'error-text', text: dash(f.error) })))
    );
    return section('Failed to load', h('p', { class: 'muted small', text: 'Folders and packages in the base directory that gp could not load, with why.' }), t.el);
  }

  // Plugins ------------------------------------------------------------------

  function plugins() {
    const problem = errorBox('plugins-error');
    const t = table(['Name', 'Version', 'State', 'Routes', 'Calls', 'Errors', 'p99', 'Last error', 'Actions'], 'plugins-table');
    const failures = h('div', { class: 'failures' });
    const rows = new Map(); // name → { tr, cells, state }

    app.append(
      h('h1', { text: 'Plugins' }),
      h('p', { class: 'muted', text: 'Every plugin gp knows, refreshed every few seconds. Actions ask before they change anything.' }),
      problem,
      section(null, h('div', { class: 'table-wrap' }, t.el)),
      failures
    );

    function row(p) {
      let r = rows.get(p.name);
      if (!r) {
        const cells = {
          version: h('td', { 'data-testid': 'version-' + p.name }),
          state: h('td', { 'data-testid': 'state-' + p.name }),
          routes: h('td', { class: 'num' }),
          calls: h('td', { class: 'num' }),
          errors: h('td', { class: 'num' }),
          p99: h('td', { class: 'num' }),
          error: h('td', { class: 'last-error' }),
          actions: h('td', { class: 'actions' }),
        };
        const tr = h(
          'tr',
          { 'data-testid': 'plugin-row-' + p.name, 'data-name': p.name },
          h('td', {}, h('a', { href: pluginHref(p.name), class: 'plugin-link', 'data-testid': 'plugin-link-' + p.name, text: p.name })),
          Object.values(cells)
        );
        r = { tr, cells, actionsKey: null };
        rows.set(p.name, r);
      }
      const m = p.metrics;
      const c = r.cells;
      setText(c.version, dash(p.version));
      if (c.state.textContent !== p.state) replaceChildren(c.state, stateBadge(p.state));
      r.tr.setAttribute('data-state', p.state);
      setText(c.routes, (p.routes || []).length);
      setText(c.calls, m ? number(m.calls) : '—');
      setText(c.errors, m ? number(m.errors + m.panics) : '—');
      c.errors.classList.toggle('bad', !!(m && m.errors + m.panics));
      setText(c.p99, m && m.latency.count ? duration(m.latency.p99_ns) : '—');
      const last = m && m.last_error;
      const lastText = p.state === 'disabled' && p.disabled ? 'disabled: ' + p.disabled.reason : last ? time(last.at_unix_ms) + ' ' + last.message : '';
      setText(c.error, lastText || '—');
      if (lastText) c.error.setAttribute('title', lastText);
      else c.error.removeAttribute('title');
      // Rebuild the buttons only when the choice changes: a file being chosen survives.
      const key = actionsFor(p.state).join(',');
      if (r.actionsKey !== key) {
        r.actionsKey = key;
        replaceChildren(
          c.actions,
          actionsFor(p.state).map((a) => (a === 'upgrade' ? upgradeButton(p.name) : actionButton(a, p)))
        );
      }
      return r.tr;
    }

    async function refresh() {
      let data;
      try {
        data = await loadPlugins();
        showError(problem, null);
      } catch (e) {
        showError(problem, e);
        return;
      }
      const list = data.plugins || [];
      const names = new Set(list.map((p) => p.name));
      for (const [name, r] of rows) {
        if (!names.has(name)) {
          r.tr.remove();
          rows.delete(name);
        }
      }
      if (!list.length) {
        emptyRow(t.tbody, 9, 'No plugins yet: put plugins in the base directory.');
      } else {
        const empty = t.tbody.querySelector('tr.empty');
        if (empty) empty.remove();
        // In order, moving only what is out of place.
        let before = t.tbody.firstChild;
        for (const p of list) {
          const tr = row(p);
          if (tr !== before) t.tbody.insertBefore(tr, before);
          else before = before.nextSibling;
        }
      }
      replaceChildren(failures, (data.failures || []).length ? failuresCard(data.failures) : null);
    }

    return { refresh };
  }

  // One plugin ---------------------------------------------------------------

  function pluginPage(name) {
    const problem = errorBox('plugin-error');
    const title = h('h1', {}, h('a', { href: '#/plugins', class: 'crumb', text: 'Plugins' }), ' / ', h('span', { 'data-testid': 'plugin-name', text: name }), ' ');
    const stateHolder = h('span', { class: 'title-state' });
    title.append(stateHolder);
    const actions = h('div', { class: 'page-actions', 'data-testid': 'plugin-actions' });
    const facts = h('dl', { class: 'facts', 'data-testid': 'facts' });
    const routesTable = table(['Method', 'Route', 'Label'], 'plugin-routes');
    const metrics = h('div', { class: 'stats stats-small', 'data-testid': 'metrics' });
    const chart = h('div', { class: 'chart', 'data-testid': 'histogram' });
    const lastError = h('div', { 'data-testid': 'last-error' });
    let actionsKey = null;
    let histogramKey = null;

    // The "Try it" form, built once so that what is typed survives refreshes.
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
        const answer = await api('POST', '/plugins/' + encodeURIComponent(name) + '/invoke', { label: label || null, values, timeout_ms: timeout });
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
      section('Latency histogram', h('p', { class: 'muted small', text: 'How many of the timed calls took up to each bucket\u2019s upper bound (gp times a sample of the calls: one in 64 unless the host says otherwise).' }), chart),
      section('Routes', routesTable.el),
      section('Try it', h('p', { class: 'muted small', text: 'Calls the plugin directly, with this label and these values, and shows the values it leaves in the context.' }), form)
    );

    function isolationText(iso) {
      if (!iso) return 'in the server process';
      const runner = iso.runner_pid ? 'runner pid ' + iso.runner_pid : 'no runner now (the next call starts one)';
      return 'isolated: ' + runner + ', ' + iso.restarts + ' restart' + (iso.restarts === 1 ? '' : 's') +
        ', ' + iso.crashes + ' crash' + (iso.crashes === 1 ? '' : 'es') +
        (iso.circuit_open ? ', circuit open: failed until loaded again' : ', circuit closed');
    }

    function fact(term, value, cls) {
      return [h('dt', { text: term }), h('dd', { class: cls || '', text: dash(value) })];
    }

    function drawHistogram(buckets) {
      const key = JSON.stringify(buckets || []);
      if (key === histogramKey) return;
      histogramKey = key;
      if (!buckets || !buckets.length) {
        replaceChildren(chart, h('p', { class: 'muted', text: 'No timed calls yet: run one with "Try it" below.' }));
        return;
      }
      replaceChildren(chart, histogram(buckets));
    }

    async function refresh() {
      let p;
      try {
        p = await api('GET', '/plugins/' + encodeURIComponent(name));
        showError(problem, null);
      } catch (e) {
        showError(problem, e);
        return;
      }
      if (lastPlugins && lastPlugins.plugins) {
        const i = lastPlugins.plugins.findIndex((x) => x.name === name);
        if (i >= 0) lastPlugins.plugins[i] = p;
      }
      replaceChildren(stateHolder, stateBadge(p.state));
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
        p.state === 'serving' ? fact('Runs', isolationText(p.isolation)) : null,
        p.rollback_to ? fact('Rolls back to', p.rollback_to) : null
      );
      const list = actionsFor(p.state).slice();
      if (p.rollback_to && p.state === 'serving') list.splice(1, 0, 'rollback');
      const key = list.join(',');
      if (key !== actionsKey) {
        actionsKey = key;
        replaceChildren(actions, list.map((a) => (a === 'upgrade' ? upgradeButton(p.name) : actionButton(a, p))));
      }
      const m = p.metrics;
      if (m) {
        const lat = m.latency || {};
        const metric = (label, value, cls) => h('div', { class: 'stat' + (cls ? ' stat-' + cls : '') }, h('div', { class: 'stat-value', text: value }), h('div', { class: 'stat-label', text: label }));
        replaceChildren(
          metrics,
          metric('calls', number(m.calls)),
          metric('errors', number(m.errors), m.errors ? 'bad' : ''),
          metric('panics', number(m.panics), m.panics ? 'bad' : ''),
          metric('in flight', number(m.in_flight)),
          metric('timed', number(lat.count)),
          metric('mean', lat.count ? duration(lat.mean_ns) : '—'),
          metric('p50', lat.count ? duration(lat.p50_ns) : '—'),
          metric('p90', lat.count ? duration(lat.p90_ns) : '—'),
          metric('p99', lat.count ? duration(lat.p99_ns) : '—'),
          metric('loads', number(m.loads)),
          metric('upgrades', number(m.upgrades)),
          metric('unloads', number(m.unloads))
        );
        replaceChildren(
          lastError,
          m.last_error
            ? h('div', { class: 'last-error-box' }, h('strong', { text: 'Last error ' }), h('time', { text: dateTime(m.last_error.at_unix_ms) }), h('pre', { class: 'error-text', text: m.last_error.message }))
            : h('p', { class: 'muted small', text: 'No failed calls.' })
        );
      } else {
        replaceChildren(metrics, h('p', { class: 'muted', text: 'No metrics: the plugin is not loaded.' }));
        clear(lastError);
      }
      drawHistogram(p.histogram);
      const routes = p.routes || [];
      if (!routes.length) emptyRow(routesTable.tbody, 3, 'No HTTP routes.');
      else replaceChildren(routesTable.tbody, routes.map((r) => h('tr', {}, h('td', {}, h('span', { class: 'method', text: r.method })), h('td', { class: 'mono', text: r.route }), h('td', { class: 'mono', text: r.label }))));
      const known = routes.map((r) => r.label).join('\n');
      if (labels.getAttribute('data-known') !== known) {
        labels.setAttribute('data-known', known);
        replaceChildren(labels, [...new Set(routes.map((r) => r.label))].map((l) => h('option', { value: l })));
      }
    }

    return { refresh };
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

  // Routes -------------------------------------------------------------------

  function routesPage() {
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
      let data;
      try {
        data = await api('GET', '/routes');
        showError(problem, null);
      } catch (e) {
        showError(problem, e);
        return;
      }
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

  // Hub ----------------------------------------------------------------------

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

  function hubPage() {
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
      replaceChildren(
        results.tbody,
        plugins.map((p) => {
          const newest = p.newest_version;
          const here = currentPlugin(p.name);
          let action;
          if (!newest) action = h('span', { class: 'muted', text: 'no version tag' });
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
        })
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

  function notFound() {
    app.append(h('h1', { text: 'Not found' }), h('p', {}, 'Nothing here. ', h('a', { href: '#/', text: 'Go to the overview' }), '.'));
    return {};
  }

  // ---------------------------------------------------------------- routing

  function route() {
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
      return { key: 'plugins', make: () => pluginPage(name) };
    }
    if (parts[0] === 'routes' && parts.length === 1) return { key: 'routes', make: routesPage };
    if (parts[0] === 'hub' && parts.length === 1) return { key: 'hub', make: hubPage };
    return { key: 'missing', make: notFound };
  }

  function render() {
    if (view && view.leave) view.leave();
    view = null;
    if (!token()) {
      showPrompt();
      return;
    }
    nav.hidden = false;
    session.hidden = false;
    const r = route();
    for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.getAttribute('data-view') === r.key);
    clear(app);
    view = r.make();
    refreshAgain = false;
    refreshNow();
    startRefreshing();
    if (!stream) startEvents();
  }

  // ---------------------------------------------------------------- sign in and out

  let promptMessage = '';

  function signOut(message) {
    setToken('');
    stopEvents();
    clearInterval(refreshTimer);
    lastPlugins = null;
    events.length = 0;
    promptMessage = message || '';
    if (confirmDone) confirmDone(null);
    statusBox.hidden = true;
    if (view && view.leave) view.leave();
    view = null;
    showPrompt();
  }

  function showPrompt() {
    nav.hidden = true;
    session.hidden = true;
    clear(app);
    const input = h('input', { type: 'password', id: 'token', 'data-testid': 'token', autocomplete: 'off', spellcheck: 'false', placeholder: 'admin token', required: true });
    const button = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'token-submit', text: 'Sign in' });
    const message = h('p', { class: 'inline-error', 'data-testid': 'token-error', role: 'alert', hidden: !promptMessage, text: promptMessage });
    const form = h(
      'form',
      { class: 'card login', 'data-testid': 'token-form', novalidate: true },
      h('h1', { text: 'Sign in' }),
      h('p', { class: 'muted', text: 'The management API needs its token. `gp serve --admin` prints where the token file is; the page keeps it for this browser tab only.' }),
      message,
      h('label', { class: 'field' }, h('span', { text: 'Admin token' }), input),
      h('div', { class: 'try-row' }, button)
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const value = input.value.trim();
      if (!value) {
        setText(message, 'Enter the token first.');
        message.hidden = false;
        return;
      }
      button.disabled = true;
      setToken(value);
      promptMessage = '';
      try {
        await api('GET', '/plugins');
      } catch (err) {
        button.disabled = false;
        if (err instanceof ApiError && err.status === 401) return; // signOut showed the prompt again
        setToken('');
        setText(message, errorText(err));
        message.hidden = false;
        return;
      }
      if (!location.hash || location.hash === '#') location.hash = '#/'; // hashchange renders
      else render();
    });
    app.append(form);
    input.focus();
  }

  document.getElementById('signout').addEventListener('click', () => signOut(''));
  window.addEventListener('hashchange', render);
  render();
})();
