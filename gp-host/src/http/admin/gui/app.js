// The gp management GUI: plain JavaScript modules, no build step, nothing fetched from
// elsewhere. It talks to /api/v1 with the token from `gp serve`'s sign-in link
// (/ui/#token=…: a fragment, never sent to a server; read here before routing, kept in the
// tab's session storage, and taken out of the address bar) or entered by hand. Every piece
// of data goes into the page as text (textContent), never as markup, and the content
// security policy forbids inline scripts and styles.
//
// This module is the entry point (index.html loads it): signing in and out, and drawing the
// page the location hash names. The modules it imports never import it back.

import { api, ApiError, errorText, setToken, token, whenTokenRefused } from './api.js';
import { cancelAsking } from './confirm.js';
import { clear, h, setText, withCode } from './dom.js';
import { eventsStarted, forgetEvents, startEvents, stopEvents } from './events.js';
import { leaveView, showView, stopRefreshing } from './refresh.js';
import { route } from './router.js';
import { hideStatus } from './status.js';
import { forgetPlugins } from './store.js';

const app = document.getElementById('app');
const nav = document.getElementById('nav');
const session = document.getElementById('session');

function render() {
  leaveView();
  if (!token()) {
    showPrompt();
    return;
  }
  nav.hidden = false;
  session.hidden = false;
  const r = route();
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.getAttribute('data-view') === r.key);
  clear(app);
  showView(r.make(app));
  if (!eventsStarted()) startEvents();
}

// ---------------------------------------------------------------- sign in and out

let promptMessage = '';

function signOut(message) {
  setToken('');
  stopEvents();
  stopRefreshing();
  forgetPlugins();
  forgetEvents();
  promptMessage = message || '';
  cancelAsking();
  hideStatus();
  leaveView();
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
    h(
      'p',
      { class: 'muted', 'data-testid': 'token-help' },
      withCode('The management API needs its token. `gp serve` prints a sign-in link that carries it when it runs in a terminal (or with `--print-signin-link`), and names the file the token is in. The page keeps it for this browser tab only: open the link again in another tab.')
    ),
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

// The sign-in link: `#token=…` (percent-encoded) is taken before routing (the page routes
// on the hash), kept like an entered token, and replaced in the address bar and this
// history entry by the overview's `#/`, so the token is neither shown nor bookmarked.
// Session storage, not local storage: a token kept for good would outlive this server and be
// readable by whatever serves this origin (this host and port) next.
function signInFromLink() {
  const match = /^#token=([^&]*)$/.exec(location.hash);
  if (!match) return;
  let value = '';
  try {
    value = decodeURIComponent(match[1]);
  } catch (e) {
    value = '';
  }
  history.replaceState(null, '', location.pathname + location.search + '#/');
  if (value) setToken(value);
}

signInFromLink();
whenTokenRefused(signOut);
document.getElementById('signout').addEventListener('click', () => signOut(''));
window.addEventListener('hashchange', () => {
  signInFromLink(); // a link pasted into a tab already open
  render();
});
render();
