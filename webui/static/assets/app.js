// seatbroker License Usage page. Plain JavaScript, no build step.
// Rule: data from the server is only ever put into the page as text
// (textContent, attribute values), never parsed as HTML.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const VIEWS = ['license', 'usage', 'settings', 'users'];
  const ADMIN_VIEWS = ['settings', 'users'];
  const RANK = { none: 0, own: 1, domain: 2 };

  const st = {
    me: null, // the signed-in user
    perms: null, // {view, control, is_admin}
    settings: null,
    csrf: '',
    rows: new Map(), // session id -> row
    selected: new Set(),
    total: 0,
    loadGen: 0,
    pending: null, // events seen while a session list is loading
    es: null,
    esRetry: 0,
    esTimer: 0,
    unavailable: false,
    degraded: false, // the last overview said Redis is unreachable
    overview: null,
    users: [],
    editing: null, // the user in the dialog
  };

  // ---- helpers ----------------------------------------------------------

  class ApiError extends Error {
    constructor(code, message, status) {
      super(message);
      this.code = code;
      this.status = status;
    }
  }

  // el makes an element; props are DOM properties (textContent, className,
  // ...), never HTML.
  function el(tag, props, children) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (k === 'dataset') Object.assign(e.dataset, v);
        else if (k === 'attrs') for (const [a, av] of Object.entries(v)) e.setAttribute(a, av);
        else e[k] = v;
      }
    }
    for (const c of children || []) e.append(c);
    return e;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  async function api(method, path, body) {
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
      if (res.status === 401 && st.me && !path.endsWith('/auth/signin')) {
        signedOut('Your sign-in has ended. Sign in again.');
      }
      throw new ApiError(code, err.message || res.statusText || 'Request failed', res.status);
    }
    return data;
  }

  let noticeTimer = 0;
  function notify(text, isError) {
    const n = $('notice');
    n.textContent = text;
    n.classList.toggle('error', !!isError);
    n.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { n.hidden = true; }, 8000);
  }

  function pad2(n) { return n < 10 ? '0' + n : String(n); }

  function fmtDuration(sec) {
    sec = Math.max(0, Math.floor(sec));
    const h = Math.floor(sec / 3600);
    const m = Math.floor((sec % 3600) / 60);
    const s = sec % 60;
    return h > 0 ? h + ':' + pad2(m) + ':' + pad2(s) : m + ':' + pad2(s);
  }

  function fmtStarted(iso) {
    if (!iso) return '-';
    const d = new Date(iso);
    if (isNaN(d.getTime())) return '-';
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    if (d.toDateString() === new Date().toDateString()) return time;
    return d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + time;
  }

  const isAdmin = () => !!(st.perms && st.perms.is_admin);
  const canView = () => !!(st.perms && st.perms.view && st.perms.view !== 'none');

  // ---- banner: the server or its database is unavailable ----------------

  // READY_EVERY: how often the page asks /readyz, so that it says when the
  // node loses its database even while nothing changes.
  const READY_EVERY = 3000;

  function setUnavailable(on) {
    if (on === st.unavailable) return;
    st.unavailable = on;
    renderBanner();
  }

  function renderBanner() {
    const degraded = st.degraded;
    const b = $('banner');
    if (st.unavailable || degraded) {
      b.textContent = 'The license server cannot reach its database: nothing new is granted, and the numbers shown may be out of date.';
      b.hidden = false;
    } else {
      b.hidden = true;
    }
  }

  async function checkReady() {
    try {
      const res = await fetch('/readyz', { cache: 'no-store' });
      if (res.ok) {
        if (st.unavailable) {
          setUnavailable(false);
          if (st.me) resync(); // what changed while it was down
        }
        return true;
      }
    } catch (e) { /* still down */ }
    setUnavailable(true);
    return false;
  }

  // ---- routing ------------------------------------------------------------

  function currentView() {
    const v = location.hash.replace(/^#/, '');
    if (!VIEWS.includes(v)) return 'usage';
    if (ADMIN_VIEWS.includes(v) && !isAdmin()) return 'usage';
    return v;
  }

  function show(view) {
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
    applyMe(me);
    route(true);
    connectEvents();
    loadOverview();
    loadSessions();
  }

  function applyMe(me) {
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
      afterChange();
    }
  }

  function signedOut(message) {
    st.me = null;
    st.perms = null;
    st.csrf = '';
    if (st.es) st.es.close();
    st.es = null;
    clearTimeout(st.esTimer);
    st.rows.clear();
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

  async function signOut() {
    try { await api('POST', '/api/v1/auth/signout'); } catch (e) { /* signed out anyway */ }
    signedOut('');
  }

  // ---- live updates -----------------------------------------------------------

  function connectEvents() {
    if (st.es) st.es.close();
    clearTimeout(st.esTimer);
    const es = new EventSource('/api/v1/events');
    st.es = es;
    const json = (e) => { try { return JSON.parse(e.data); } catch (x) { return null; } };
    es.addEventListener('open', () => {
      if (st.esRetry > 0) resync(); // anything may have changed while we were away
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

  // ---- overview -------------------------------------------------------------------

  async function loadOverview() {
    try {
      renderOverview(await api('GET', '/api/v1/overview'));
    } catch (e) { /* the banner or sign-in says why */ }
  }

  function renderOverview(o) {
    st.degraded = !!o.degraded;
    if (st.degraded && st.overview) {
      renderBanner(); // keep the last known numbers; the banner says they may be stale
      return;
    }
    st.overview = o;
    setText($('ov-seats'), String(o.seats));
    setText($('ov-in-use'), String(o.in_use));
    setText($('ov-free'), String(o.free));
    setText($('ov-over'), String(o.over));
    $('ov-over').classList.toggle('bad', o.over > 0);
    setText($('ov-ppu-balance'), o.ppu_enabled ? o.ppu_balance + ' min' : 'off');
    setText($('ov-ppu-sessions'), String(o.ppu_sessions));
    $('ov-ppu-off').hidden = !!o.ppu_enabled;
    if (o.name) setText($('account-name'), o.name);
    renderBanner();
    renderSummary();
  }

  function renderSummary() {
    const o = st.overview;
    const parts = [];
    if (canView()) parts.push(st.rows.size + (st.rows.size === 1 ? ' session' : ' sessions'));
    if (o) {
      parts.push(o.in_use + ' of ' + o.seats + ' licenses in use');
      parts.push(o.free + ' free');
      if (o.over > 0) parts.push('over the limit by ' + o.over);
      if (o.ppu_enabled) parts.push(o.ppu_sessions + ' on pay-per-use, ' + o.ppu_balance + ' min left');
    }
    setText($('usage-summary'), parts.join(' · '));
  }

  // ---- sessions -----------------------------------------------------------------------

  async function loadSessions() {
    if (!canView()) return;
    const gen = ++st.loadGen;
    st.pending = [];
    let data;
    try {
      data = await api('GET', '/api/v1/sessions?limit=1000');
    } catch (e) {
      if (gen === st.loadGen) st.pending = null;
      return;
    }
    if (gen !== st.loadGen) return; // a newer load is on its way
    const pending = st.pending || [];
    st.pending = null;
    const list = (data && data.sessions) || [];
    const seen = new Set(list.map((s) => s.id));
    for (const id of [...st.rows.keys()]) if (!seen.has(id)) removeRow(id);
    for (const s of list) upsert(s);
    // Events that came while the list was loading are newer than some of it.
    for (const ev of pending) ev();
    st.total = data && typeof data.total === 'number' ? data.total : list.length;
    const more = $('sessions-more');
    more.hidden = st.total <= list.length;
    more.textContent = 'Showing the newest ' + list.length + ' of ' + st.total + ' sessions.';
    afterChange();
  }

  function onSession(s) {
    const apply = () => (s.state === 'ended' ? removeRow(s.id) : upsert(s));
    if (st.pending) st.pending.push(apply);
    apply();
    afterChange();
  }

  function onHidden(id) {
    const apply = () => removeRow(id);
    if (st.pending) st.pending.push(apply);
    apply();
    afterChange();
  }

  const LABELS = ['Select', 'User', 'Device', 'State', 'Seat', 'Code', 'Started', 'Duration'];

  function newRow(s) {
    const tr = el('tr');
    tr.dataset.id = s.id;
    const cells = {};
    ['sel', 'user', 'device', 'state', 'kind', 'code', 'started', 'duration'].forEach((name, i) => {
      const td = el('td', { className: name });
      if (LABELS[i]) td.dataset.label = LABELS[i];
      cells[name] = td;
      tr.append(td);
    });
    cells.badge = el('span', { className: 'badge' });
    cells.state.append(cells.badge);
    return { s: null, tr, cells, box: null, recv: 0, deadlineAt: 0, resynced: false };
  }

  function upsert(s) {
    let row = st.rows.get(s.id);
    const isNew = !row;
    if (isNew) {
      row = newRow(s);
      st.rows.set(s.id, row);
    }
    row.s = s;
    row.recv = Date.now();
    // The countdown runs on the local clock from the seconds the server
    // counted, so a skewed client clock does not matter.
    if (s.state === 'terminating') {
      const left = typeof s.seconds_left === 'number' ? s.seconds_left
        : s.deadline ? Math.max(0, (Date.parse(s.deadline) - Date.now()) / 1000) : 0;
      row.deadlineAt = row.recv + left * 1000;
      row.resynced = false;
    }
    fillRow(row);
    if (isNew) placeRow(row);
  }

  // placeRow keeps the server's order: newest first, ties by id.
  function placeRow(row) {
    const body = $('sessions-body');
    const created = Date.parse(row.s.created) || 0;
    for (const tr of body.children) {
      const other = st.rows.get(tr.dataset.id);
      if (!other || other === row) continue;
      const oc = Date.parse(other.s.created) || 0;
      if (oc < created || (oc === created && other.s.id > row.s.id)) {
        body.insertBefore(row.tr, tr);
        return;
      }
    }
    body.append(row.tr);
  }

  function removeRow(id) {
    const row = st.rows.get(id);
    if (!row) return;
    row.tr.remove();
    st.rows.delete(id);
    st.selected.delete(id);
  }

  function fillRow(row) {
    const s = row.s;
    const c = row.cells;
    if (s.can_control) {
      if (!row.box) {
        row.box = el('input', { type: 'checkbox' });
        row.box.addEventListener('change', () => {
          if (row.box.checked) st.selected.add(row.s.id);
          else st.selected.delete(row.s.id);
          renderSelection();
        });
        c.sel.append(row.box);
      }
      const who = s.user_name || s.user_id;
      row.box.setAttribute('aria-label', 'Select the session of ' + who + ' on ' + (s.device_name || s.device_id));
      row.box.disabled = s.state === 'terminating';
      if (row.box.disabled) st.selected.delete(s.id);
      row.box.checked = st.selected.has(s.id);
    } else if (row.box) {
      row.box.remove();
      row.box = null;
      st.selected.delete(s.id);
    }
    setText(c.user, s.user_name || s.user_id);
    setText(c.device, s.device_name || s.device_id);
    c.device.title = s.device_id;
    c.badge.className = 'badge badge-' + s.state;
    c.badge.title = s.reason ? 'Reason: ' + s.reason + (s.ended_by ? ', by ' + s.ended_by : '') : '';
    setText(c.kind, s.kind === 'ppu' ? 'Pay-per-use' : s.kind === 'prepaid' ? 'Prepaid' : '-');
    c.kind.className = 'kind' + (s.kind === 'ppu' ? ' kind-ppu' : '');
    setText(c.code, s.code || '');
    setText(c.started, fmtStarted(s.started));
    row.tr.classList.toggle('selected', st.selected.has(s.id));
    tickRow(row, Date.now());
  }

  function tickRow(row, now) {
    const s = row.s;
    let label = s.state;
    if (s.state === 'terminating') {
      const left = Math.max(0, Math.ceil((row.deadlineAt - now) / 1000));
      label = left > 0 ? 'terminating · ' + left + ' s' : 'terminating · ending';
      // Safety net: the ending event should remove the row; if it is late
      // (a lost connection), ask the server.
      if (!row.resynced && now > row.deadlineAt + 5000) {
        row.resynced = true;
        loadSessions();
      }
    }
    setText(row.cells.badge, label);
    let dur = s.duration_sec || 0;
    if (s.state === 'active' || s.state === 'terminating') dur += (now - row.recv) / 1000;
    setText(row.cells.duration, s.started ? fmtDuration(dur) : '-');
  }

  function tick() {
    const now = Date.now();
    for (const row of st.rows.values()) tickRow(row, now);
  }

  function afterChange() {
    renderSelection();
    renderSummary();
    const empty = canView() && st.rows.size === 0;
    $('sessions-empty').hidden = !empty;
    $('sessions').parentElement.hidden = !canView() || st.rows.size === 0;
  }

  function selectable() {
    return [...st.rows.values()].filter((r) => r.box && !r.box.disabled);
  }

  function renderSelection() {
    for (const row of st.rows.values()) {
      const on = st.selected.has(row.s.id);
      if (row.box && row.box.checked !== on) row.box.checked = on;
      row.tr.classList.toggle('selected', on);
    }
    const n = st.selected.size;
    $('end-selected').disabled = n === 0;
    setText($('selected-count'), n === 0 ? '' : n === 1 ? '1 session selected' : n + ' sessions selected');
    const all = $('select-all');
    const sel = selectable();
    all.disabled = sel.length === 0;
    all.checked = sel.length > 0 && sel.every((r) => st.selected.has(r.s.id));
    all.indeterminate = !all.checked && sel.some((r) => st.selected.has(r.s.id));
  }

  function confirmDialog(title, text, okLabel) {
    const d = $('confirm');
    setText($('confirm-title'), title);
    setText($('confirm-text'), text);
    setText($('confirm-ok'), okLabel);
    d.returnValue = '';
    return new Promise((resolve) => {
      d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
      d.showModal();
      $('confirm-cancel').focus();
    });
  }

  async function endSelected() {
    const ids = [...st.selected].filter((id) => st.rows.has(id));
    if (ids.length === 0) return;
    const notice = st.settings && st.settings.notice_sec ? st.settings.notice_sec : 30;
    const what = ids.length === 1 ? 'the selected session' : 'the ' + ids.length + ' selected sessions';
    const ok = await confirmDialog(
      ids.length === 1 ? 'End 1 session?' : 'End ' + ids.length + ' sessions?',
      'Everyone in ' + what + ' gets a notice, and running sessions close in ' + notice +
        ' seconds. Sessions still waiting for their code end at once.',
      ids.length === 1 ? 'End session' : 'End ' + ids.length + ' sessions');
    if (!ok) return;
    $('end-selected').disabled = true;
    try {
      const res = await api('POST', '/api/v1/sessions/end', { session_ids: ids });
      const failed = [];
      for (const r of (res && res.results) || []) {
        st.selected.delete(r.id);
        if (r.ok && r.session) onSession(r.session);
        if (!r.ok) failed.push(r);
      }
      if (failed.length > 0) {
        const msg = failed[0].error && failed[0].error.message ? failed[0].error.message : 'refused';
        notify(failed.length + (failed.length === 1 ? ' session was' : ' sessions were') + ' not ended: ' + msg, true);
      } else {
        notify(ids.length === 1 ? 'The session is ending.' : ids.length + ' sessions are ending.');
      }
    } catch (e) {
      notify('The sessions were not ended: ' + e.message, true);
    }
    afterChange();
  }

  // ---- the four permission boxes (ISL's Security tab) ----------------------------

  // permBoxes ties four checkboxes so that control never exceeds view and
  // domain always includes own.
  function permBoxes(fieldset) {
    const box = (p) => fieldset.querySelector('[data-perm="' + p + '"]');
    const vo = box('view-own'), vd = box('view-domain'), co = box('control-own'), cd = box('control-domain');
    const implies = new Map([
      [vd, [vo]], [co, [vo]], [cd, [co, vd, vo]],
    ]);
    const needs = new Map([
      [vo, [vd, co, cd]], [vd, [cd]], [co, [cd]],
    ]);
    fieldset.addEventListener('change', (e) => {
      const b = e.target;
      if (b.checked) for (const o of implies.get(b) || []) o.checked = true;
      else for (const o of needs.get(b) || []) o.checked = false;
    });
    return {
      get() {
        return {
          view: vd.checked ? 'domain' : vo.checked ? 'own' : 'none',
          control: cd.checked ? 'domain' : co.checked ? 'own' : 'none',
        };
      },
      set(view, control) {
        vo.checked = RANK[view] >= 1;
        vd.checked = RANK[view] >= 2;
        co.checked = RANK[control] >= 1 && RANK[view] >= 1;
        cd.checked = RANK[control] >= 2 && RANK[view] >= 2;
      },
    };
  }

  let accountPerms = null;
  let userPerms = null;

  async function loadSettings() {
    try {
      const s = await api('GET', '/api/v1/settings');
      st.settings = s;
      accountPerms.set(s.view, s.control);
    } catch (e) {
      notify('The settings could not be loaded: ' + e.message, true);
    }
  }

  async function saveSecurity(ev) {
    ev.preventDefault();
    const p = accountPerms.get();
    try {
      st.settings = await api('PATCH', '/api/v1/settings', { view: p.view, control: p.control });
      accountPerms.set(st.settings.view, st.settings.control);
      notify('The security settings are saved.');
    } catch (e) {
      notify('Not saved: ' + e.message, true);
    }
  }

  // ---- users ------------------------------------------------------------------------

  const SCOPE = { none: 'None', own: 'Own', domain: 'Domain' };
  const ROLE = { owner: 'Owner', admin: 'Administrator', member: 'Member' };

  async function loadUsers() {
    if (!isAdmin()) return;
    try {
      const data = await api('GET', '/api/v1/users');
      st.users = Array.isArray(data) ? data : (data && data.users) || [];
      renderUsers();
    } catch (e) {
      notify('The users could not be loaded: ' + e.message, true);
    }
  }

  function renderUsers() {
    const body = $('users-body');
    const rows = st.users.map((u) => {
      const cell = (label, text, cls) => el('td', { textContent: text, className: cls || '', dataset: { label } });
      const status = cell('Status', u.status === 'blocked' ? 'Blocked' : 'Active', u.status === 'blocked' ? 'blocked' : '');
      const edit = el('button', { type: 'button', className: 'small', textContent: 'Edit' });
      edit.setAttribute('aria-label', 'Edit ' + u.name);
      edit.addEventListener('click', () => openUser(u));
      const actions = el('td', { className: 'actions-cell', dataset: { label: 'Actions' } }, [edit]);
      if (u.role !== 'owner' && !(st.me && u.id === st.me.id)) {
        const blocked = u.status === 'blocked';
        const blk = el('button', { type: 'button', className: 'small' + (blocked ? '' : ' danger'), textContent: blocked ? 'Unblock' : 'Block' });
        blk.setAttribute('aria-label', (blocked ? 'Unblock ' : 'Block ') + u.name);
        blk.addEventListener('click', () => setBlocked(u, !blocked));
        actions.append(blk);
      }
      const own = (v) => (v ? ' (own setting)' : '');
      const tr = el('tr', null, [
        cell('Name', u.name, 'user'),
        cell('Role', ROLE[u.role] || u.role),
        status,
        cell('Seats held', String(u.seats_held || 0)),
        cell('Seat limit', u.max_seats === null || u.max_seats === undefined ? 'none' : String(u.max_seats)),
        cell('View', (SCOPE[u.effective_view] || u.effective_view) + own(u.view)),
        cell('Control', (SCOPE[u.effective_control] || u.effective_control) + own(u.control)),
        actions,
      ]);
      tr.dataset.id = u.id;
      return tr;
    });
    body.replaceChildren(...rows);
  }

  async function setBlocked(u, block) {
    if (block) {
      const ok = await confirmDialog('Block ' + u.name + '?',
        u.name + ' gets no license until unblocked, and every session of ' + u.name + ' ends after the notice.', 'Block');
      if (!ok) return;
    }
    try {
      await api('POST', '/api/v1/users/' + encodeURIComponent(u.id) + (block ? '/block' : '/unblock'));
      notify(u.name + (block ? ' is blocked.' : ' is unblocked.'));
    } catch (e) {
      notify('Not changed: ' + e.message, true);
    }
    loadUsers();
  }

  function openUser(u) {
    st.editing = u;
    setText($('user-dialog-title'), u.name);
    setText($('user-dialog-role'), (ROLE[u.role] || u.role) + ', ' + (u.status === 'blocked' ? 'blocked' : 'active'));
    $('user-max').value = u.max_seats === null || u.max_seats === undefined ? '' : String(u.max_seats);
    const privileged = u.role === 'owner' || u.role === 'admin';
    const follow = !u.view && !u.control;
    $('user-follow').checked = follow;
    $('user-follow').disabled = privileged;
    userPerms.set(u.view || u.effective_view, u.control || u.effective_control);
    $('user-perms').disabled = privileged || follow;
    $('user-admin-note').hidden = !privileged;
    $('user-error').hidden = true;
    $('user-dialog').showModal();
  }

  async function saveUser(ev) {
    if (ev.submitter && ev.submitter.value !== 'save') return; // Cancel closes
    ev.preventDefault();
    const u = st.editing;
    if (!u) return;
    const raw = $('user-max').value.trim();
    const patch = { max_seats: raw === '' ? null : Number(raw) };
    if (raw !== '' && !(Number.isInteger(patch.max_seats) && patch.max_seats >= 0)) {
      $('user-error').textContent = 'The seat limit is a whole number, 0 or more, or empty for no limit.';
      $('user-error').hidden = false;
      return;
    }
    if (u.role === 'member') {
      if ($('user-follow').checked) {
        patch.view = '';
        patch.control = '';
      } else {
        const p = userPerms.get();
        patch.view = p.view;
        patch.control = p.control;
      }
    }
    try {
      await api('PATCH', '/api/v1/users/' + encodeURIComponent(u.id), patch);
      $('user-dialog').close('saved');
      notify(u.name + ' is saved.');
      loadUsers();
    } catch (e) {
      $('user-error').textContent = e.message;
      $('user-error').hidden = false;
    }
  }

  async function addUser(ev) {
    ev.preventDefault();
    const name = $('add-name').value.trim();
    const password = $('add-password').value;
    const raw = $('add-max').value.trim();
    if (!name || password.length < 8) {
      notify('A new user needs a name and a password of at least 8 characters.', true);
      return;
    }
    const body = { name, password, role: $('add-role').value };
    if (raw !== '') body.max_seats = Number(raw);
    try {
      await api('POST', '/api/v1/users', body);
      $('add-user-form').reset();
      notify(name + ' is added.');
      loadUsers();
    } catch (e) {
      notify('Not added: ' + e.message, true);
    }
  }

  // ---- start ------------------------------------------------------------------------

  async function boot() {
    accountPerms = permBoxes($('account-perms'));
    userPerms = permBoxes($('user-perms'));
    $('signin-form').addEventListener('submit', signIn);
    $('signout').addEventListener('click', signOut);
    $('end-selected').addEventListener('click', endSelected);
    $('select-all').addEventListener('change', (e) => {
      for (const r of selectable()) {
        if (e.target.checked) st.selected.add(r.s.id);
        else st.selected.delete(r.s.id);
      }
      renderSelection();
    });
    $('security-form').addEventListener('submit', saveSecurity);
    $('add-user-form').addEventListener('submit', addUser);
    $('user-form').addEventListener('submit', saveUser);
    $('user-follow').addEventListener('change', (e) => {
      $('user-perms').disabled = e.target.checked;
      if (e.target.checked && st.settings) userPerms.set(st.settings.view, st.settings.control);
    });
    window.addEventListener('hashchange', () => route(true));
    setInterval(tick, 250);
    setInterval(() => { if (st.me || st.unavailable) checkReady(); }, READY_EVERY);
    try {
      signedIn(await api('GET', '/api/v1/me'));
    } catch (e) {
      show('signin');
      if (e.code === 'unavailable') checkReady();
    }
    document.body.dataset.ready = 'true';
  }

  boot();
})();
