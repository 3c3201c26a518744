// casestream portal: sign-in (password form, or an OIDC issuer per tenant), hash router, header and the live feed.
import * as api from './api.js';
import * as oidc from './oidc.js';
import { h, mount, option, showProblem, toast } from './dom.js';
import * as store from './store.js';
import { renderList, renderNew } from './list.js';
import { renderDetail, renderHistory } from './detail.js';
import { renderBoard } from './board.js';
import { renderInbox, renderTask } from './inbox.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let cleanup = null;
let stopFeed = null;
let routeSeq = 0;
let signin = null; // GET /auth/config: {mode: 'password'} or {mode: 'oidc', issuers: [...]}; null if it failed

const go = (hash) => { if (location.hash === hash) route(); else location.hash = hash; };

function setLiveStatus(state) {
  const el = document.getElementById('live');
  if (!el) return;
  el.dataset.state = state;
  el.textContent = { live: 'Live', connecting: 'Connecting…', offline: 'Reconnecting…', off: 'Offline' }[state] || state;
  el.title = state === 'live' ? 'Receiving live updates' : 'Live updates paused; the feed resumes where it left off';
}

function renderNav() {
  const me = store.session.me;
  if (!me) { nav.replaceChildren(); return; }
  const link = (href, label) => h('a', { href, 'data-nav': href.split('/')[1] }, label);
  mount(nav,
    h('ul', {}, h('li', {}, link('#/cases', 'Cases')), h('li', {}, link('#/board', 'Board')), h('li', {}, link('#/tasks', 'Tasks')), h('li', {}, link('#/new', 'New case'))),
    h('div', { class: 'who' },
      h('span', { id: 'live', class: 'live', role: 'status' }),
      h('span', {}, h('strong', {}, me.user), ` @ ${me.tenant}`, me.roles?.length ? h('span', { class: 'muted' }, ` (${me.roles.join(', ')})`) : null),
      h('button', { type: 'button', onclick: signOut }, 'Sign out')));
  setLiveStatus('connecting');
}

function highlightNav() {
  const section = location.hash.split(/[/?]/)[1] || 'cases';
  for (const a of nav.querySelectorAll('a[data-nav]')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

// OIDC mode: one button per tenant; the tenant's issuer asks for the password on its own page.
function renderIssuerChoice(message) {
  const box = h('div', { class: 'problem', hidden: true });
  const choose = async (issuer, button) => {
    button.disabled = true;
    try { await oidc.begin(issuer); } catch (err) { showProblem(box, err); button.disabled = false; }
  };
  const last = sessionStorage.getItem('casestream.tenant');
  const buttons = signin.issuers.map((issuer) => {
    const button = h('button', { type: 'button', class: issuer.tenant === last ? 'primary' : '' }, `Sign in with ${issuer.tenant}`);
    button.addEventListener('click', () => choose(issuer, button));
    return button;
  });
  mount(main, h('section', { class: 'card login', 'aria-labelledby': 'login-h' },
    h('h1', { id: 'login-h' }, 'Sign in to casestream'),
    message ? h('p', { class: 'notice', role: 'status' }, message) : null,
    box,
    h('p', { class: 'muted' }, 'Choose your organisation; its sign-in page asks for your password.'),
    h('div', { class: 'actions' }, ...buttons)));
  buttons.find((b) => b.classList.contains('primary'))?.focus();
}

function renderLogin(message) {
  nav.replaceChildren();
  document.title = 'Sign in · casestream';
  if (signin?.mode === 'oidc') { renderIssuerChoice(message); return; }
  if (!signin) {
    mount(main, h('section', { class: 'card login', 'aria-labelledby': 'login-h' },
      h('h1', { id: 'login-h' }, 'Sign in to casestream'),
      h('p', { class: 'notice', role: 'status' }, 'The sign-in options could not be loaded; the server may be starting.'),
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', onclick: () => boot() }, 'Try again'))));
    return;
  }
  const box = h('div', { class: 'problem', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const field = (id, label, attrs) => h('div', { class: 'field' }, h('label', { for: id }, label), h('input', { id, name: id, ...attrs }));
  mount(main, h('form', {
    class: 'card login', 'aria-labelledby': 'login-h',
    onsubmit: async (e) => {
      e.preventDefault();
      const f = new FormData(e.target);
      submit.disabled = true;
      try {
        await api.login(String(f.get('username')).trim(), String(f.get('password')), String(f.get('tenant')).trim());
        await start();
      } catch (err) { showProblem(box, err); } finally { submit.disabled = false; }
    },
  },
  h('h1', { id: 'login-h' }, 'Sign in to casestream'),
  message ? h('p', { class: 'notice', role: 'status' }, message) : null,
  box,
  field('username', 'Username', { required: true, autocomplete: 'username' }),
  field('password', 'Password', { type: 'password', required: true, autocomplete: 'current-password' }),
  field('tenant', 'Tenant', { value: sessionStorage.getItem('casestream.tenant') || 'acme', required: true, pattern: '[a-z][a-z0-9\\-]*' }),
  h('div', { class: 'actions' }, submit)));
  main.querySelector('#username')?.focus();
}

function logout(message) {
  stopFeed?.(); stopFeed = null;
  cleanup?.(); cleanup = null;
  api.clearToken();
  oidc.signOut(false);
  store.reset();
  renderLogin(typeof message === 'string' ? message : null);
}

// The Sign out button: with an OIDC session, also end it at the issuer (which sends the browser back here).
function signOut() {
  const atIssuer = oidc.session() !== null;
  stopFeed?.(); stopFeed = null;
  cleanup?.(); cleanup = null;
  api.clearToken();
  store.reset();
  if (!oidc.signOut(atIssuer)) renderLogin();
}

async function route() {
  if (!store.session.me) return;
  const seq = ++routeSeq;
  cleanup?.(); cleanup = null;
  highlightNav();
  document.title = 'casestream';
  const [path, qs] = (location.hash.replace(/^#/, '') || '/cases').split('?');
  const params = new URLSearchParams(qs || '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const view = h('div', { class: 'view', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  mount(main, view);
  try {
    let result;
    if (parts[0] === 'cases' && parts[1] && parts[2] === 'history') result = await renderHistory(view, parts[1], params, go);
    else if (parts[0] === 'cases' && parts[1]) result = await renderDetail(view, parts[1], go);
    else if (parts[0] === 'tasks' && parts[1]) result = await renderTask(view, parts[1], go);
    else if (parts[0] === 'tasks') result = await renderInbox(view, params, go);
    else if (parts[0] === 'board') result = await renderBoard(view, parts[1] || '', go);
    else if (parts[0] === 'new') result = await renderNew(view, params, go);
    else result = await renderList(view, params, go);
    if (seq !== routeSeq) { result?.(); return; }
    cleanup = typeof result === 'function' ? result : null;
  } catch (err) {
    if (seq !== routeSeq) return;
    const box = h('div', { class: 'problem' });
    mount(view, box);
    showProblem(box, err);
  } finally {
    view.removeAttribute('aria-busy');
    const heading = view.querySelector('h1');
    if (heading && seq === routeSeq) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
  }
}

async function start() {
  try {
    const me = await store.loadMe();
    sessionStorage.setItem('casestream.tenant', me.tenant);
  } catch (err) {
    logout(err.status === 401 ? 'Please sign in again.' : `Could not load your profile: ${err.detail || err.title}`);
    return;
  }
  renderNav();
  const users = document.getElementById('users');
  mount(users, [...new Set([store.session.me.user, ...store.DEV_USERS])].map((u) => option(u)));
  stopFeed?.();
  stopFeed = api.subscribe((evt) => {
    api.notePosition(evt.position); // refreshes triggered by this event read at least up to it
    store.dispatch(evt);
  }, setLiveStatus);
  await route();
}

window.addEventListener('hashchange', route);
// The skip link must not change the hash (that is the router's).
document.querySelector('.skip')?.addEventListener('click', (e) => { e.preventDefault(); main.focus(); });
window.addEventListener('casestream:unauthorized', () => {
  if (store.session.me) { toast('Your session ended; please sign in again.', 'error'); logout('Your session ended; please sign in again.'); }
});

async function boot() {
  try { signin = await api.signinConfig(); } catch { signin = null; }
  if (signin?.mode === 'oidc') {
    try {
      if (await oidc.complete()) { await start(); return; }
    } catch (err) {
      renderLogin(`${err.title || 'Sign-in failed'}: ${err.detail || err.message}`);
      return;
    }
    // a reload after the access token expired: the refresh token may still renew it
    if (!api.token() && oidc.session()) await oidc.refresh().catch(() => false);
  }
  if (api.token()) start(); else renderLogin();
}

boot();
