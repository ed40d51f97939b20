import { get } from '../api.js';
import { h } from '../dom.js';
import { t } from '../i18n.js';

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
    ctx.has('GET', '/api/v1/settings') ? null :
      h('section', { class: 'panel na', dataset: { na: '1' } }, h('h2', null, t('na.title')),
        h('p', null, t('na.body', { routes: 'GET /api/v1/settings' }))));
}
