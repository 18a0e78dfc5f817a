// The view on screen and its refreshing: every few seconds, after an action, and soon after
// a lifecycle event. One refresh runs at a time; a request during one runs once it is done.

const REFRESH_MS = 2000;

let view = null; // { refresh(), leave() }
let refreshing = false;
let refreshAgain = false;
let refreshTimer = null;
let busy = false; // an action is under way: the timer waits, the action refreshes when done

// Refreshes the view now; if a refresh is under way, once more when it is done (so what an
// action changed is shown at once, not at the next tick).
export function refreshNow() {
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

// Puts `next` on screen (already built) and refreshes it now and every few seconds.
export function showView(next) {
  view = next;
  refreshAgain = false;
  refreshNow();
  startRefreshing();
}

// Tells the view on screen that it goes, and forgets it.
export function leaveView() {
  if (view && view.leave) view.leave();
  view = null;
}

export function stopRefreshing() {
  clearInterval(refreshTimer);
}

export function setBusy(value) {
  busy = value;
}

function startRefreshing() {
  clearInterval(refreshTimer);
  refreshTimer = setInterval(() => {
    if (!busy && !document.hidden) refreshNow();
  }, REFRESH_MS);
}
