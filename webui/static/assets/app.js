// seatbroker License Usage page. Plain JavaScript, no build step: ES modules
// loaded from this node (the CSP allows 'self' scripts only). This module is
// the entry: routing, sign-in and sign-out, and boot. page.js holds the
// shared state and DOM helpers, api.js the REST API, banner and event
// stream, usage.js the License and License Usage views, admin.js Settings
// and Users. Some modules import each other (api.js calls back into
// usage.js and app.js); that is safe because every module's top level only
// declares, and boot() below, the only code that runs on load, runs after
// every module is evaluated.
// Rule: data from the server is only ever put into the page as text
// (textContent, attribute values), never parsed as HTML.

import { $, canView, isAdmin, setText, st } from './page.js';
import { api, BLOCKED, checkReady, connectEvents, watchReady } from './api.js';
import { afterChange, initUsage, loadOverview, loadSessions, removeRow, tick } from './usage.js';
import { initAdmin, loadSettings, loadUsers } from './admin.js';

const VIEWS = ['license', 'usage', 'settings', 'users'];
const ADMIN_VIEWS = ['settings', 'users'];
let shown = ''; // the view on screen

// ---- routing ------------------------------------------------------------

function currentView() {
  const v = location.hash.replace(/^#/, '');
  if (!VIEWS.includes(v)) return 'usage';
  if (ADMIN_VIEWS.includes(v) && !isAdmin()) return 'usage';
  return v;
}

function show(view) {
  shown = view;
  for (const s of document.querySelectorAll('main > .view')) s.hidden = s.id !== 'view-' + view;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const titles = { signin: 'Sign in', license: 'License', usage: 'License Usage', settings: 'Settings', users: 'Users' };
  document.title = titles[view] + ' - seatbroker';
}

function route(moveFocus) {
  if (!st.me) {
    show('signin');
    return;
  }
  const v = currentView();
  show(v);
  if (v === 'users') loadUsers();
  if (v === 'settings') loadSettings();
  if (moveFocus) {
    const h = document.querySelector('#view-' + v + ' h1');
    if (h) { h.tabIndex = -1; h.focus(); }
  }
}

// ---- sign in and out ------------------------------------------------------

async function signIn(ev) {
  ev.preventDefault();
  const err = $('signin-error');
  err.hidden = true;
  const body = {
    account: $('signin-account').value.trim(),
    name: $('signin-name').value.trim(),
    password: $('signin-password').value,
    kind: 'web',
  };
  if (!body.account || !body.name || !body.password) {
    err.textContent = 'Enter the account, your user name and your password.';
    err.hidden = false;
    return;
  }
  $('signin-submit').disabled = true;
  try {
    const res = await api('POST', '/api/v1/auth/signin', body);
    if (res && res.csrf_token) st.csrf = res.csrf_token;
    const me = await api('GET', '/api/v1/me');
    $('signin-password').value = '';
    if (!VIEWS.includes(location.hash.replace(/^#/, ''))) history.replaceState(null, '', '#usage');
    signedIn(me);
  } catch (e) {
    err.textContent = e.status === 401 || e.code === 'unauthorized'
      ? 'The account, user name or password is wrong.'
      : e.message;
    err.hidden = false;
  } finally {
    $('signin-submit').disabled = false;
  }
}

function signedIn(me) {
  st.meUnknown = false;
  applyMe(me);
  route(true);
  connectEvents();
  loadOverview();
  loadSessions();
}

export function applyMe(me) {
  st.me = me.user;
  st.perms = me.permissions || { view: me.user.effective_view, control: me.user.effective_control, is_admin: false };
  st.settings = me.settings || null;
  if (me.csrf_token) st.csrf = me.csrf_token;
  setText($('who-name'), st.me.name);
  setText($('account-name'), st.settings && st.settings.name ? st.settings.name : '');
  $('nav').hidden = false;
  $('who').hidden = false;
  for (const a of document.querySelectorAll('#nav [data-admin]')) a.hidden = !isAdmin();
  $('usage-denied').hidden = canView();
  $('sessions').hidden = !canView();
  $('end-selected').parentElement.hidden = !canView() || st.perms.control === 'none';
  if (!canView()) {
    for (const id of [...st.rows.keys()]) removeRow(id);
    st.total = 0;
    afterChange();
  }
  if (!isAdmin()) {
    // Demoted (a resync): the account's users leave the page, and a view
    // for the owner and admins gives way to License Usage.
    st.users = [];
    $('users-body').replaceChildren();
    if ($('user-dialog').open) $('user-dialog').close('cancel');
    if (ADMIN_VIEWS.includes(shown)) {
      history.replaceState(null, '', '#usage');
      route(true);
    }
  }
}

export function signedOut(message) {
  st.me = null;
  st.meUnknown = false;
  st.perms = null;
  st.csrf = '';
  if (st.es) st.es.close();
  st.es = null;
  clearTimeout(st.esTimer);
  st.rows.clear();
  st.total = 0;
  st.selected.clear();
  $('sessions-body').replaceChildren();
  $('users-body').replaceChildren();
  $('nav').hidden = true;
  $('who').hidden = true;
  setText($('account-name'), '');
  show('signin');
  if (message) {
    const err = $('signin-error');
    err.textContent = message;
    err.hidden = false;
  }
}

// resumeSignIn asks /api/v1/me again when the node is ready after the page
// loaded while it was not (boot could not tell whether the cookie is
// good): signed in, the page opens as it would have; otherwise the
// sign-in form stays.
export async function resumeSignIn() {
  if (st.me || !st.meUnknown) return;
  let me;
  try {
    me = await api('GET', '/api/v1/me');
  } catch (e) {
    if (e.code !== 'unavailable') st.meUnknown = false; // not signed in: the form stays
    if (e.code === 'user_blocked') signedOut(BLOCKED);
    return;
  }
  if (st.me || !st.meUnknown) return; // signed in by hand meanwhile
  $('signin-error').hidden = true;
  signedIn(me);
}

async function signOut() {
  try { await api('POST', '/api/v1/auth/signout'); } catch (e) { /* signed out anyway */ }
  signedOut('');
}

// ---- start ------------------------------------------------------------------------

async function boot() {
  initAdmin();
  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', signOut);
  initUsage();
  window.addEventListener('hashchange', () => route(true));
  setInterval(tick, 250);
  watchReady();
  try {
    signedIn(await api('GET', '/api/v1/me'));
  } catch (e) {
    // Unavailable: the banner shows, and the page signs in by itself when
    // the node is ready again if the cookie is good (resumeSignIn). The
    // form stays for whoever is not signed in.
    show('signin');
    if (e.code === 'user_blocked') signedOut(BLOCKED);
    if (e.code === 'unavailable') {
      st.meUnknown = true;
      checkReady();
    }
  }
  document.body.dataset.ready = 'true';
}

boot();
