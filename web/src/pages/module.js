import { get } from '../api.js';
import { fmtTime, h } from '../dom.js';
import { t } from '../i18n.js';

// Pages whose data other modules add to the API (scanner, ACME, alerts,
// policy).  They show what this server's API has (found in openapi.json),
// and say plainly what is not there yet.
const MODULES = {
  endpoints: { prefixes: ['/api/v1/endpoints', '/api/v1/scan', '/api/v1/findings'] },
  managed: { prefixes: ['/api/v1/managed'] },
  alerts: { prefixes: ['/api/v1/alert'] },
  policies: { prefixes: ['/api/v1/compliance', '/api/v1/polic', '/api/v1/reports'] },
};
const REPORT_KINDS = ['inventory', 'expiry', 'compliance', 'algorithms', 'pq-readiness'];
const TIME_KEY = /(_at|^at|time|seen|not_after|not_before|since|until)$/;

function cell(k, v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'boolean') return v ? '✔' : '✘';
  if (typeof v === 'string' && TIME_KEY.test(k) && /^\d{4}-\d\d-\d\dT/.test(v)) return fmtTime(v);
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function itemsTable(items) {
  if (!items.length) return h('p', { class: 'muted' }, t('none'));
  const cols = [];
  for (const it of items.slice(0, 50))
    if (it && typeof it === 'object') for (const k of Object.keys(it)) if (!cols.includes(k) && cols.length < 10) cols.push(k);
  if (!cols.length) return h('ul', null, items.map((x) => h('li', null, cell('', x))));
  return h('div', { class: 'table-scroll' }, h('table', { class: 'grid' },
    h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, items.slice(0, 500).map((it) => h('tr', null, cols.map((c) => h('td', null, cell(c, it[c]))))))));
}

export function renderData(data) {
  if (Array.isArray(data)) return itemsTable(data);
  if (data && typeof data === 'object') {
    const scalars = Object.entries(data).filter(([, v]) => v === null || typeof v !== 'object');
    const lists = Object.entries(data).filter(([, v]) => Array.isArray(v));
    const objects = Object.entries(data).filter(([, v]) => v && typeof v === 'object' && !Array.isArray(v));
    return h('div', null,
      scalars.length ? h('dl', { class: 'kv' }, scalars.map(([k, v]) => [h('dt', null, k), h('dd', null, cell(k, v))])) : null,
      objects.map(([k, v]) => h('div', null, h('h3', null, k), renderData(v))),
      lists.map(([k, v]) => h('div', null, h('h3', null, k, ' ', h('span', { class: 'muted' }, t('generic.items', { n: v.length }))),
        itemsTable(v))));
  }
  return h('pre', null, String(data));
}

// The GET routes of a module this server has.
function moduleRoutes(routes, id) {
  return [...routes.keys()].filter((k) => k.startsWith('GET ') &&
    MODULES[id].prefixes.some((p) => k.slice(4).startsWith(p)));
}

// Hidden from the navigation when the server has the module's routes but the
// role may read none of them.
export function moduleVisible(ctx, id) {
  const found = moduleRoutes(ctx.routes, id);
  return found.length === 0 || found.some((k) => ctx.can('GET', k.slice(4)));
}

export async function modulePage(ctx, id) {
  const mod = MODULES[id];
  const found = moduleRoutes(ctx.routes, id);
  const sections = [];
  for (const key of found) {
    const path = key.slice(4);
    if (!ctx.can('GET', path)) continue;
    if (path.startsWith('/api/v1/reports/{')) {
      sections.push(h('section', { class: 'panel' }, h('h2', null, t('reports.title')),
        h('ul', { class: 'chips' }, REPORT_KINDS.map((k) => h('li', null, k, ': ',
          ['html', 'csv', 'json'].map((f) => h('a', { href: `/api/v1/reports/${k}?format=${f}`, target: '_blank', rel: 'noopener' }, f, ' ')))))));
      continue;
    }
    if (path.includes('{')) continue;
    if (path === '/api/v1/compliance') {
      sections.push(await complianceSection(ctx));
      continue;
    }
    let body;
    try {
      body = renderData(await get(path));
    } catch (e) {
      body = h('p', { class: 'error' }, t('error', { msg: e.message }));
    }
    sections.push(h('section', { class: 'panel', dataset: { route: path } }, h('h2', null, h('code', null, 'GET ' + path)), body));
  }
  const title = t(id + '.title');
  return h('div', { class: 'module', dataset: { title } },
    h('div', { class: 'page-head' }, h('h1', null, title)),
    sections.length ? sections : found.length ?
      h('section', { class: 'panel na', dataset: { denied: '1' } }, h('p', null, t('na.denied', { role: t('role.' + ctx.me.role) }))) :
      h('section', { class: 'panel na', dataset: { na: '1' } }, h('h2', null, t('na.title')),
        h('p', null, t('na.body', { routes: mod.prefixes.map((p) => p + '…').join(', ') }))));
}

// The compliance of the inventory under the default policy: the subjects
// that violate it, a page at a time, each certificate linked to its page.
async function complianceSection(ctx) {
  const offset = Number(ctx.query.get('offset')) || 0;
  let c;
  try {
    c = await get('/api/v1/compliance?violating=1&limit=100&offset=' + offset);
  } catch (e) {
    return h('section', { class: 'panel' }, h('h2', null, t('ov.compliance')),
      h('p', { class: 'error' }, t('error', { msg: e.message })));
  }
  const sm = c.summary;
  const link = (it) => it.kind === 'certificate' && it.id ? h('a', { href: '#/certificates/' + it.id }, it.label || it.ref || it.id)
                                                          : (it.label || it.ref || '');
  return h('section', { class: 'panel', id: 'compliance', dataset: { route: '/api/v1/compliance' } },
    h('h2', null, t('ov.compliance'), ' ', h('span', { class: 'muted' }, c.policy, ' · ', fmtTime(c.evaluated_at))),
    h('table', { class: 'grid' }, h('thead', null, h('tr', null, h('th', null, ''),
      ['total', 'compliant', 'violating'].map((k) => h('th', { scope: 'col' }, t('ov.c.' + k))))),
      h('tbody', null, ['certificates', 'endpoints', 'sites'].map((k) => h('tr', null,
        h('th', { scope: 'row' }, t('ov.c.' + k)), h('td', { class: 'num' }, String(sm[k].total)),
        h('td', { class: 'num ok' }, String(sm[k].compliant)), h('td', { class: 'num bad' }, String(sm[k].violating)))))),
    h('h3', null, t('ov.c.byrule')),
    h('ul', { class: 'chips' }, Object.entries(sm.by_rule).filter(([, n]) => n > 0).map(([r, n]) => h('li', null, h('code', null, r), ' · ', String(n)))),
    h('h3', null, t('ov.c.violating'), ' ', h('span', { class: 'muted' }, t('generic.items', { n: c.total_items }))),
    c.items.length ? h('div', { class: 'table-scroll' }, h('table', { class: 'grid', id: 'violations' },
      h('thead', null, h('tr', null, ['kind', 'subject', 'rule', 'detail'].map((c) => h('th', { scope: 'col' }, t('comp.' + c))))),
      h('tbody', null, c.items.map((it) => it.violations.map((v, i) => h('tr', null,
        h('td', null, i === 0 ? it.kind : ''), h('td', null, i === 0 ? link(it) : ''),
        h('td', null, h('code', null, v.rule)), h('td', { class: 'detail' }, v.detail || '')))))))
      : h('p', { class: 'muted' }, t('none')),
    h('div', { class: 'pager' },
      h('button', { type: 'button', disabled: offset === 0, onclick: () => ctx.navigate('/policies?offset=' + Math.max(0, offset - 100)) }, t('certs.prev')),
      h('button', { type: 'button', disabled: offset + c.items.length >= c.total_items,
                    onclick: () => ctx.navigate('/policies?offset=' + (offset + 100)) }, t('certs.next'))));
}
