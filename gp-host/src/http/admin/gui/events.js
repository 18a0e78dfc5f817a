// The lifecycle event stream (GET /api/v1/events?history=true, server-sent events read with
// fetch so that the token goes in a header): the recent events, the charts' samples, the "events: live" indicator, reconnecting
// with backoff, and a refresh of the view soon after each change.

import { API, token, tokenRefused } from './api.js';
import { setText } from './dom.js';
import { refreshNow } from './refresh.js';

const MAX_EVENTS = 100;

const live = document.getElementById('live');
const events = []; // newest first
const eventListeners = new Set();
const historyListeners = new Set();
let stream = null; // { controller, timer, stopped }
let backoff = 1000;

export function startEvents() {
  stopEvents();
  const controller = new AbortController();
  const handle = { controller, timer: null, stopped: false };
  stream = handle;
  connectEvents(handle);
}

export function stopEvents() {
  if (!stream) return;
  stream.stopped = true;
  clearTimeout(stream.timer);
  stream.controller.abort();
  stream = null;
}

export function eventsStarted() {
  return stream !== null;
}

// The newest `count` events, newest first.
export function recentEvents(count) {
  return events.slice(0, count);
}

export function forgetEvents() {
  events.length = 0;
}

// Calls `listener` with each new event (`null`: the list started afresh); returns what
// stops it.
export function listenToEvents(listener) {
  eventListeners.add(listener);
  return () => eventListeners.delete(listener);
}

// Calls `listener` with each new sample of GET /history the stream brings; returns what
// stops it.
export function listenToHistory(listener) {
  historyListeners.add(listener);
  return () => historyListeners.delete(listener);
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
    response = await fetch(API + '/events?history=true', {
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
    if (token() === used && stream === handle) tokenRefused((data && data.error) || 'the token is not valid for this server');
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
  if (event && event.event === 'history') {
    // A sample for the charts, not a lifecycle event: no list entry, no refresh.
    for (const listener of historyListeners) listener(event);
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
