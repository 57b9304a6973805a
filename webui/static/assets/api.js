// Talking to the node: the REST API (CSRF token on every change), the
// database-unavailable banner with its /readyz checks, and the event stream
// that keeps the page live.

import { $, notify, st } from './page.js';
import { loadOverview, loadSessions, onHidden, onSession, renderOverview } from './usage.js';
import { applyMe, resumeSignIn, signedOut } from './app.js';

class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

export async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  if (method !== 'GET' && st.csrf) opts.headers['X-CSRF-Token'] = st.csrf;
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    setUnavailable(true);
    throw new ApiError('unavailable', 'The license server cannot be reached.', 0);
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = null; }
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    let code = err.code;
    if (!code) code = res.status === 401 ? 'unauthorized' : res.status === 503 ? 'unavailable' : 'error';
    if (code === 'unavailable') setUnavailable(true);
    if (st.me && !path.endsWith('/auth/signin')) {
      if (res.status === 401) signedOut('Your sign-in has ended. Sign in again.');
      // The viewer was blocked: its tokens stop working, so the page may
      // no longer show the account.
      else if (code === 'user_blocked') signedOut(BLOCKED);
    }
    throw new ApiError(code, err.message || res.statusText || 'Request failed', res.status);
  }
  return data;
}

// BLOCKED is what the sign-in form says to a user who was blocked.
export const BLOCKED = 'Your user is blocked, so you are signed out. Ask an administrator of your account.';

// ---- banner: the server or its database is unavailable ----------------

// READY_EVERY: how often a signed-in page asks /readyz, so that it says
// when the node loses its database even while nothing changes;
// READY_EVERY_DOWN: how often while the banner shows, to take it down (and
// re-fetch) soon after the node is ready again.
export const READY_EVERY = 3000;
export const READY_EVERY_DOWN = 2000;

let readyTimer = 0;
let readyBusy = false; // a check is on its way: the next waits its turn

// watchReady (re)starts the /readyz checks at the pace the banner asks for.
export function watchReady() {
  clearTimeout(readyTimer);
  readyTimer = setTimeout(() => {
    watchReady();
    if ((st.me || st.unavailable) && !readyBusy) {
      readyBusy = true;
      checkReady().finally(() => { readyBusy = false; });
    }
  }, st.unavailable ? READY_EVERY_DOWN : READY_EVERY);
}

function setUnavailable(on) {
  if (on === st.unavailable) return;
  st.unavailable = on;
  renderBanner();
  watchReady(); // the pace changes with the banner
}

export function renderBanner() {
  const degraded = st.degraded;
  const b = $('banner');
  if (st.unavailable || degraded) {
    b.textContent = 'The license server cannot reach its database: nothing new is granted, and the numbers shown may be out of date.';
    b.hidden = false;
  } else {
    b.hidden = true;
  }
}

export async function checkReady() {
  try {
    const res = await fetch('/readyz', { cache: 'no-store' });
    if (res.ok) {
      if (st.unavailable) {
        setUnavailable(false);
        if (st.me) resync(); // what changed while it was down
        else resumeSignIn(); // loaded while it was down: the cookie may be good
      }
      return true;
    }
  } catch (e) { /* still down */ }
  setUnavailable(true);
  return false;
}

// ---- live updates -----------------------------------------------------------

export function connectEvents() {
  if (st.es) st.es.close();
  clearTimeout(st.esTimer);
  const es = new EventSource('/api/v1/events');
  st.es = es;
  const json = (e) => { try { return JSON.parse(e.data); } catch (x) { return null; } };
  es.addEventListener('open', () => {
    // Anything may have changed before the stream was listening: while we
    // were away, or, at sign-in, between the first reads and now (a role
    // change then would never be told).
    resync();
    st.esRetry = 0;
  });
  es.addEventListener('session', (e) => { const s = json(e); if (s) onSession(s); });
  es.addEventListener('session_hidden', (e) => { const h = json(e); if (h) onHidden(h.id); });
  es.addEventListener('overview', (e) => { const o = json(e); if (o) renderOverview(o); });
  es.addEventListener('resync', () => resync());
  es.addEventListener('warning', (e) => { const w = json(e); if (w) onWarning(w); });
  es.onerror = () => {
    if (st.es !== es) return;
    es.close();
    st.es = null;
    st.esRetry++;
    const wait = Math.min(1000 * 2 ** (st.esRetry - 1), 15000) * (0.75 + Math.random() * 0.5);
    st.esTimer = setTimeout(reconnect, wait);
  };
}

async function reconnect() {
  if (!st.me) return;
  if (!(await checkReady())) {
    st.esTimer = setTimeout(reconnect, 3000);
    return;
  }
  try {
    await api('GET', '/api/v1/me'); // a 401 here signs the page out
  } catch (e) {
    if (!st.me) return;
  }
  connectEvents();
  st.esRetry = Math.max(st.esRetry, 1);
}

function onWarning(w) {
  if (w.code === 'ppu_low' || w.balance !== undefined) {
    notify('Pay-per-use balance is low: ' + w.balance + ' minutes left.', true);
  } else if (w.message) {
    notify(String(w.message), true);
  }
}

// resync re-reads everything: the viewer's permissions (an admin may
// have changed them), the overview and the sessions.
async function resync() {
  loadOverview();
  try {
    applyMe(await api('GET', '/api/v1/me'));
  } catch (e) {
    if (!st.me) return; // signed out
  }
  loadSessions();
}
