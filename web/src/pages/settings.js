import { get } from '../api.js';
import { h } from '../dom.js';
import { t } from '../i18n.js';
import { renderData } from './module.js';

// Preferences of this browser, and what the server says about itself.  Server
// settings appear here once the API has them.
export async function settingsPage(ctx) {
  const health = await get('/healthz').catch((e) => ({ status: e.message }));
  const me = ctx.me;
  return h('div', { class: 'settings', dataset: { title: t('settings.title') } },
    h('div', { class: 'page-head' }, h('h1', null, t('settings.title'))),
    h('section', { class: 'panel' }, h('h2', null, t('settings.prefs')),
      h('p', null, t('lang.label'), ': ', ctx.lang === 'zh' ? '中文' : 'English', ' · ',
        t('theme.label'), ': ', document.documentElement.dataset.theme),
      h('p', { class: 'muted' }, 'localStorage: aclm.lang, aclm.theme')),
    h('section', { class: 'panel' }, h('h2', null, t('settings.server')),
      h('dl', { class: 'kv' },
        h('dt', null, t('settings.health')), h('dd', { id: 'health' }, health.status),
        h('dt', null, t('settings.schema')), h('dd', null, String(health.schema ?? '—')),
        h('dt', null, t('role')), h('dd', null, t('settings.me', { user: me.user, role: t('role.' + me.role), via: me.via || 'session' })),
        h('dt', null, t('settings.api')), h('dd', null, h('a', { href: '/api/v1/openapi.json' }, '/api/v1/openapi.json'),
          ' · ', t('settings.routes', { n: ctx.routes.size })))),
    await section(ctx, '/api/v1/nodes', t('settings.nodes')),
    await section(ctx, '/api/v1/jobs', t('settings.jobs')),
    ctx.has('GET', '/api/v1/settings') ? null :
      h('section', { class: 'panel na', dataset: { na: '1' } }, h('h2', null, t('na.title')),
        h('p', null, t('na.body', { routes: 'GET /api/v1/settings' }))));
}

// What the server has about its cluster and background work, when the role
// may read it.
async function section(ctx, path, title) {
  if (!ctx.can('GET', path)) return null;
  let body;
  try {
    body = renderData(await get(path + '?limit=50'));
  } catch (e) {
    body = h('p', { class: 'error' }, t('error', { msg: e.message }));
  }
  return h('section', { class: 'panel', dataset: { route: path } }, h('h2', null, title), body);
}
