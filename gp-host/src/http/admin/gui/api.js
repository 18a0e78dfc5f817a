// The token and the management API: the token (from the sign-in link or entered by hand; kept
// in the tab's session storage), `api` for one call to /api/v1, and what happens when the
// server refuses the token.

export const API = '/api/v1';
const TOKEN_KEY = 'gp.admin.token';

let memoryToken = '';

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch (e) {
    return memoryToken;
  }
}

export function setToken(value) {
  memoryToken = value;
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch (e) {
    // Storage refused (private mode): keep it in memory for this page only.
  }
}

// What a refused token leads to (signing out) is decided by app.js, at the top: the modules
// below it report the refusal here instead of importing upwards.
let onRefused = () => {};

export function whenTokenRefused(handler) {
  onRefused = handler;
}

export function tokenRefused(message) {
  onRefused(message);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// One API call. `body`: an object (sent as JSON), a Blob/File (sent as octet-stream), or
// undefined. Every change is sent with a content type, as the API requires.
export async function api(method, path, body) {
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
      tokenRefused(message);
    }
    throw new ApiError(response.status, message);
  }
  return data;
}

export function errorText(e) {
  if (e instanceof ApiError && e.status) return e.message + ' (HTTP ' + e.status + ')';
  return e && e.message ? e.message : String(e);
}

// A plugin's path in the API.
export function pluginPath(name) {
  return '/plugins/' + encodeURIComponent(name);
}
