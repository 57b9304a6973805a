// The owner's and administrators' views: Settings (Security tab) and Users.

import { $, confirmDialog, el, isAdmin, notify, setText, st } from './page.js';
import { api } from './api.js';

const RANK = { none: 0, own: 1, domain: 2 };

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

export async function loadSettings() {
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

export async function loadUsers() {
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

// initAdmin ties the permission boxes and wires the Settings and Users forms.
export function initAdmin() {
  accountPerms = permBoxes($('account-perms'));
  userPerms = permBoxes($('user-perms'));
  $('security-form').addEventListener('submit', saveSecurity);
  $('add-user-form').addEventListener('submit', addUser);
  $('user-form').addEventListener('submit', saveUser);
  $('user-follow').addEventListener('change', (e) => {
    $('user-perms').disabled = e.target.checked;
    if (e.target.checked && st.settings) userPerms.set(st.settings.view, st.settings.control);
  });
}
