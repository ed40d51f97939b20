import { get, query } from '../api.js';
import { clear, fmtTime, h } from '../dom.js';
import { t } from '../i18n.js';

const PERIODS = { day: 86400e3, week: 7 * 86400e3, month: 30 * 86400e3, all: 0 };

function detailText(d) {
  if (d === null || d === undefined) return '';
  if (typeof d !== 'object') return String(d);
  return Object.entries(d).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ');
}

// The hash-chained event log, oldest first within the period, a page at a
// time; "verify chain" recomputes the chain on the server.
export async function auditPage(ctx) {
  const period = ctx.query.get('period') in PERIODS ? ctx.query.get('period') : 'week';
  const after = Number(ctx.query.get('after')) || 0;
  const since = PERIODS[period] ? new Date(Date.now() - PERIODS[period]).toISOString().replace(/\.\d+Z$/, 'Z') : null;
  const r = await get('/api/v1/events' + query({ since, after: after || null, limit: 100 }));
  const result = h('div', { id: 'verify-result', 'aria-live': 'polite' });
  const verifyBtn = h('button', { type: 'button', class: 'primary', id: 'verify', onclick: async () => {
    verifyBtn.disabled = true;
    clear(result).appendChild(h('p', { class: 'muted' }, t('audit.verifying')));
    try {
      const v = await get('/api/v1/audit/verify');
      clear(result).appendChild(v.intact
        ? h('p', { class: 'ok', role: 'status', dataset: { intact: '1' } },
          '✔ ', t('audit.intact', { n: v.events, id: v.head_id, hash: v.head_hash.slice(0, 16) + '…' }))
        : h('div', { class: 'error', role: 'alert', dataset: { intact: '0' } },
          '✘ ', t('audit.broken', { n: v.problems.length, events: v.events }),
          h('ul', null, v.problems.map((p) => h('li', null, `#${p.id}: ${p.problem}` +
            (p.last ? ` (last good #${p.last})` : ''))))));
    } catch (e) {
      clear(result).appendChild(h('p', { class: 'error', role: 'alert' }, t('error', { msg: e.message })));
    }
    verifyBtn.disabled = false;
  } }, t('audit.verify'));
  const go = (params) => ctx.navigate('/audit' + query(params));
  const periodSel = h('select', { id: 'audit-period', onchange: (e) => go({ period: e.target.value }) },
    Object.keys(PERIODS).map((k) => h('option', { value: k, selected: k === period }, t('audit.' + k))));
  const items = r.items;
  const lastId = items.length ? items[items.length - 1].id : after;
  return h('div', { class: 'audit', dataset: { title: t('audit.title') } },
    h('div', { class: 'page-head' }, h('h1', null, t('audit.title')), verifyBtn),
    result,
    h('div', { class: 'filters' }, h('label', { class: 'field' }, t('audit.since'), periodSel),
      after ? h('button', { type: 'button', class: 'ghost', onclick: () => go({ period }) }, t('audit.first')) : null),
    items.length === 0 ? h('p', { class: 'muted' }, t('audit.empty')) :
      h('table', { class: 'grid', id: 'events' },
        h('thead', null, h('tr', null, ['id', 'at', 'type', 'subject', 'detail'].map((c) =>
          h('th', { scope: 'col' }, t('audit.col.' + c))))),
        h('tbody', null, items.map((e) => h('tr', null, h('td', { class: 'num' }, String(e.id)),
          h('td', null, fmtTime(e.at)), h('td', null, h('code', null, e.type)),
          h('td', { class: 'wrap' }, e.subject || ''), h('td', { class: 'detail' }, detailText(e.detail)))))),
    items.length === 100 ? h('div', { class: 'pager' }, h('button', { type: 'button', id: 'audit-more',
      onclick: () => go({ period, after: lastId }) }, t('audit.more'))) : null);
}
