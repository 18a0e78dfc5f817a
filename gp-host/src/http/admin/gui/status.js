// The status area under the top bar: what an action is doing, did, or why it failed.

import { setCodeText, time } from './dom.js';

const statusBox = document.getElementById('status');
const statusText = document.getElementById('status-text');
document.getElementById('status-close').addEventListener('click', () => {
  statusBox.hidden = true;
});

let statusTimer = null;

// Shows `message` in the status area; a success fades after a while, an error stays until
// dismissed or replaced.
export function status(kind, message) {
  clearTimeout(statusTimer);
  statusBox.className = 'status status-' + kind;
  statusBox.setAttribute('data-kind', kind);
  setCodeText(statusText, '[' + time(Date.now()) + '] ' + message);
  statusBox.hidden = false;
  if (kind === 'ok') {
    statusTimer = setTimeout(() => {
      statusBox.hidden = true;
    }, 20000);
  }
}

export function hideStatus() {
  statusBox.hidden = true;
}

// An API answer as one readable line: `upgraded (from: 1.0.0, to: 1.1.0)`.
export function describe(answer) {
  if (!answer || typeof answer !== 'object') return String(answer);
  const rest = Object.entries(answer)
    .filter(([k]) => k !== 'result')
    .map(([k, v]) => k + ': ' + (v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v)))
    .join(', ');
  if (typeof answer.result !== 'string') return rest;
  return rest ? answer.result + ' (' + rest + ')' : answer.result;
}
