import './style.css';
import { apiRoutes, allowed, get, logout, setUnauthorizedHandler } from './api.js';
import { clear, h } from './dom.js';
import { getLang, setLang, t } from './i18n.js';
import { loginPage } from './pages/login.js';
import { overviewPage } from './pages/overview.js';
import { certificatesPage, certificatePage } from './pages/certificates.js';
import { auditPage } from './pages/audit.js';
import { usersPage } from './pages/users.js';
import { settingsPage } from './pages/settings.js';
import { modulePage, moduleVisible } from './pages/module.js';
import { endpointsPage } from './pages/endpoints.js';
import { managedPage } from './pages/managed.js';
import { alertsPage } from './pages/alerts.js';
import { applyTheme, getTheme, setTheme } from './theme.js';

// Pages of the navigation: the route that must exist and be allowed for the
// entry to show (null: always).
const NAV = [
  { id: 'overview', path: '/', need: ['GET', '/api/v1/overview'] },
  { id: 'certificates', path: '/certificates', need: ['GET', '/api/v1/certificates'] },
  { id: 'endpoints', path: '/endpoints', need: null, module: true },
  { id: 'managed', path: '/managed', need: null, module: true },
  { id: 'alerts', path: '/alerts', need: null, module: true },
  { id: 'policies', path: '/policies', need: null, module: true },
  { id: 'audit', path: '/audit', need: ['GET', '/api/v1/events'] },
  { id: 'users', path: '/users', need: ['GET', '/api/v1/tokens'] },
  { id: 'settings', path: '/settings', need: null },
];

const state = { me: null, routes: null, renderSeq: 0 };
const app = document.getElementById('app');

export function navigate(path) {
  if (location.hash === '#' + path) render();
  else location.hash = '#' + path;
}

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?', 2);
  return { path: path || '/', query: new URLSearchParams(qs || '') };
}

function ctx(extra) {
  const role = state.me ? state.me.role : null;
  return {
    me: state.me,
    routes: state.routes,
    can: (method, path) => allowed(state.routes, role, method, path),
    has: (method, path) => state.routes.has(method + ' ' + path),
    navigate,
    rerender: render,
    lang: getLang(),
    ...extra,
  };
}

function safeDecode(s) {
  try { return decodeURIComponent(s); } catch (e) { return s; }
}

function resolve(path) {
  let m;
  if (path === '/' || path === '/overview') return { nav: 'overview', page: overviewPage };
  if (path === '/certificates') return { nav: 'certificates', page: certificatesPage };
  if ((m = path.match(/^\/certificates\/([^/]+)$/)))
    return { nav: 'certificates', page: certificatePage, params: { id: safeDecode(m[1]) } };
  if (path === '/audit') return { nav: 'audit', page: auditPage };
  if (path === '/users') return { nav: 'users', page: usersPage };
  if (path === '/settings') return { nav: 'settings', page: settingsPage };
  if (path === '/endpoints') return { nav: 'endpoints', page: endpointsPage };
  if (path === '/managed') return { nav: 'managed', page: managedPage };
  if (path === '/alerts') return { nav: 'alerts', page: alertsPage };
  if (path === '/policies') {  // data from other modules
    const id = path.slice(1);
    return { nav: id, page: (c) => modulePage(c, id) };
  }
  return { nav: null, page: () => h('p', null, 'Not found: ' + path) };
}

function header() {
  const themes = ['auto', 'light', 'dark'];
  return h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: '#/' }, h('span', { class: 'logo' }, 'aclm'),
      h('span', { class: 'sub' }, t('app.subtitle'))),
    h('div', { class: 'spacer' }),
    h('label', { class: 'inline' }, t('theme.label') + ' ',
      h('select', { id: 'theme-select', 'aria-label': t('theme.label'),
                    onchange: (e) => { setTheme(e.target.value); render(); } },
        themes.map((th) => h('option', { value: th, selected: getTheme() === th }, t('theme.' + th))))),
    h('button', { id: 'lang-switch', type: 'button', class: 'ghost', lang: getLang() === 'en' ? 'zh-CN' : 'en',
                  onclick: () => { setLang(getLang() === 'en' ? 'zh' : 'en'); render(); } },
      t('lang.switch')),
    state.me ? h('span', { class: 'who', id: 'who' }, state.me.user, ' · ', t('role.' + state.me.role)) : null,
    state.me ? h('button', { id: 'logout', type: 'button', class: 'ghost',
                             onclick: async () => { await logout(); state.me = null; navigate('/'); } },
      t('logout')) : null);
}

function sidebar(active) {
  const c = ctx();
  return h('nav', { class: 'sidebar', 'aria-label': 'main' },
    h('ul', null, NAV.filter((n) => (!n.need || c.can(n.need[0], n.need[1])) &&
                                    (!n.module || moduleVisible(c, n.id))).map((n) =>
      h('li', null, h('a', { href: '#' + n.path, id: 'nav-' + n.id,
                             'aria-current': active === n.id ? 'page' : null,
                             class: active === n.id ? 'active' : null }, t('nav.' + n.id))))));
}

async function render() {
  const seq = ++state.renderSeq;
  applyTheme();
  document.title = 'aclm';
  // Without the CSRF token of a login there is no session worth asking
  // about (and no 401 in the console).
  if (!state.me && localStorage.getItem('aclm.csrf')) {
    try {
      [state.me, state.routes] = await Promise.all([get('/api/v1/me', { noRedirect: true }), apiRoutes()]);
    } catch (e) {
      state.me = null;
    }
  }
  if (seq !== state.renderSeq) return;
  if (!state.me) {
    clear(app).appendChild(h('div', { class: 'login-wrap' }, header(),
      loginPage({ onLogin: async (me) => {
        state.me = { user: me.user, role: me.role, via: 'session' };
        state.routes = await apiRoutes();
        render();
      } })));
    return;
  }
  const { path, query } = parseHash();
  const r = resolve(path);
  const main = h('main', { id: 'main', tabindex: '-1' }, h('p', { class: 'muted' }, t('loading')));
  clear(app).appendChild(h('div', { class: 'shell' },
    h('a', { class: 'skip', href: '#main', onclick: (e) => { e.preventDefault(); main.focus(); } }, t('skip')),
    header(), h('div', { class: 'body' }, sidebar(r.nav), main)));
  let node;
  try {
    node = await r.page(ctx({ params: r.params || {}, query, path }));
  } catch (e) {
    node = h('div', { class: 'error', role: 'alert' }, t('error', { msg: e.message }));
  }
  if (seq !== state.renderSeq) return;
  clear(main).appendChild(node);
  if (node.dataset && node.dataset.title) document.title = node.dataset.title + ' · aclm';
  app.dataset.rendered = location.hash || '#/';   // for tests: this route's page is in place
}

setUnauthorizedHandler(() => {
  if (state.me) {
    state.me = null;
    render();
  }
});
window.addEventListener('hashchange', render);
window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => applyTheme());
render();
