// Shared by the page's modules: its state, DOM helpers, notices and the
// confirmation dialog.
// Rule: data from the server is only ever put into the page as text
// (textContent, attribute values), never parsed as HTML.

export const $ = (id) => document.getElementById(id);

export const st = {
  me: null, // the signed-in user
  meUnknown: false, // the page loaded while the node was unavailable: maybe signed in
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

// el makes an element; props are DOM properties (textContent, className,
// ...), never HTML.
export function el(tag, props, children) {
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

export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

let noticeTimer = 0;
export function notify(text, isError) {
  const n = $('notice');
  n.textContent = text;
  n.classList.toggle('error', !!isError);
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, 8000);
}

export const isAdmin = () => !!(st.perms && st.perms.is_admin);
export const canView = () => !!(st.perms && st.perms.view && st.perms.view !== 'none');

export function confirmDialog(title, text, okLabel) {
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
