// The License and License Usage views: the overview numbers, the session
// rows with their live durations and termination countdown, selection and
// "End Selected Sessions".

import { $, canView, confirmDialog, el, notify, setText, st } from './page.js';
import { api, renderBanner } from './api.js';

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

// ---- overview -------------------------------------------------------------------


export async function loadOverview() {
  try {
    renderOverview(await api('GET', '/api/v1/overview'));
  } catch (e) { /* the banner or sign-in says why */ }
}

export function renderOverview(o) {
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
  if (canView()) parts.push(st.total + (st.total === 1 ? ' session' : ' sessions'));
  if (o) {
    parts.push(o.in_use + ' of ' + o.seats + ' licenses in use');
    parts.push(o.free + ' free');
    if (o.over > 0) parts.push('over the limit by ' + o.over);
    if (o.ppu_enabled) parts.push(o.ppu_sessions + ' on pay-per-use, ' + o.ppu_balance + ' min left');
  }
  setText($('usage-summary'), parts.join(' · '));
  const more = $('sessions-more');
  more.hidden = !canView() || st.total <= st.rows.size;
  setText(more, 'Showing the newest ' + st.rows.size + ' of ' + st.total + ' sessions.');
}

// ---- sessions -----------------------------------------------------------------------

export async function loadSessions() {
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
  st.total = data && typeof data.total === 'number' ? data.total : list.length;
  // Events that came while the list was loading are newer than some of it;
  // each counts itself in or out of the total as it applies.
  for (const ev of pending) ev();
  afterChange();
}

// The list holds the newest sessions the viewer may see (1,000 at most
// when it loaded) and st.total counts them all. Live events keep both:
// a session that appears among the rows is added and counted, one that
// ends or is hidden leaves and is uncounted. The page cannot tell whether
// an event about a session older than every row changes the count (one
// left out of the list that ended, or a paused one that came back), so it
// shows no row for it and re-reads the list instead.
export function onSession(s) {
  const apply = () => applySession(s);
  if (st.pending) st.pending.push(apply);
  apply();
  afterChange();
}

function applySession(s) {
  const known = st.rows.has(s.id);
  if (s.state === 'ended') {
    if (known) {
      removeRow(s.id);
      st.total--;
    } else if (leftOut(s)) {
      recount();
    }
    return;
  }
  if (known) {
    upsert(s);
  } else if (leftOut(s)) {
    recount();
  } else {
    upsert(s);
    st.total++;
  }
}

export function onHidden(id) {
  const apply = () => {
    if (st.rows.has(id)) {
      removeRow(id);
      st.total--;
    } else if (st.total > st.rows.size) {
      recount();
    }
  };
  if (st.pending) st.pending.push(apply);
  apply();
  afterChange();
}

// leftOut says whether s sorts after every row of a list that left
// sessions out: whether it was counted, the page cannot tell. One that
// sorts among the rows and is not one of them was not visible (a paused
// session of another user), or is new.
function leftOut(s) {
  if (st.total <= st.rows.size) return false;
  const tr = $('sessions-body').lastElementChild;
  const last = tr && st.rows.get(tr.dataset.id);
  if (!last) return true;
  const c = Date.parse(s.created) || 0;
  const lc = Date.parse(last.s.created) || 0;
  return c < lc || (c === lc && s.id > last.s.id);
}

let recountTimer = 0;

// recount re-reads the list soon, once for a burst of such events.
function recount() {
  if (recountTimer) return;
  recountTimer = setTimeout(() => {
    recountTimer = 0;
    loadSessions();
  }, 300);
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
    // (the server leaves seconds_left out when it is 0: the deadline has
    // come; the deadline itself is on the server's clock, not this one)
    const left = typeof s.seconds_left === 'number' ? s.seconds_left : 0;
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

export function removeRow(id) {
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

export function tick() {
  const now = Date.now();
  for (const row of st.rows.values()) tickRow(row, now);
}

export function afterChange() {
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

// noticeSec is the account's notice, read fresh (an admin may have changed
// it since sign-in), or the last one known if the node cannot say.
async function noticeSec() {
  try {
    const s = await api('GET', '/api/v1/settings');
    if (s) st.settings = s;
  } catch (e) { /* the last known one */ }
  return st.settings && st.settings.notice_sec ? st.settings.notice_sec : 30;
}

let asking = false; // the End Selected Sessions dialog is on its way or open

async function endSelected() {
  if (asking || st.selected.size === 0) return;
  asking = true;
  let ok = false;
  let ids = [];
  try {
    const notice = await noticeSec();
    ids = [...st.selected].filter((id) => st.rows.has(id));
    if (!st.me || ids.length === 0) return;
    ok = await askEnd(ids, notice);
  } finally {
    asking = false;
  }
  if (ok) await endSessions(ids);
}

function askEnd(ids, notice) {
  const what = ids.length === 1 ? 'the selected session' : 'the ' + ids.length + ' selected sessions';
  return confirmDialog(
    ids.length === 1 ? 'End 1 session?' : 'End ' + ids.length + ' sessions?',
    'Everyone in ' + what + ' gets a notice, and running sessions close in ' + notice +
      ' seconds. Sessions still waiting for their code end at once.',
    ids.length === 1 ? 'End session' : 'End ' + ids.length + ' sessions');
}

async function endSessions(ids) {
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

// initUsage wires the License Usage toolbar.
export function initUsage() {
  $('end-selected').addEventListener('click', endSelected);
  $('select-all').addEventListener('change', (e) => {
    for (const r of selectable()) {
      if (e.target.checked) st.selected.add(r.s.id);
      else st.selected.delete(r.s.id);
    }
    renderSelection();
  });
}
