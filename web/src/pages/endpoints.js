import { api, get, query } from '../api.js';
import { clear, fmtNum, fmtTime, h } from '../dom.js';
import { t } from '../i18n.js';
import { followJob } from './jobs.js';
import { modulePage } from './module.js';

// The network an address belongs to, for grouping: IPv4 /24, IPv6 /64.
function network(ip) {
  if (!ip) return '—';
  if (ip.includes(':')) {
    const parts = ip.split(':');
    return parts.slice(0, 4).join(':') + '::/64';
  }
  const o = ip.split('.');
  return o.length === 4 ? `${o[0]}.${o[1]}.${o[2]}.0/24` : ip;
}

function endpointsTable(r) {
  if (!r.items.length) return h('p', { class: 'muted' }, t('none'));
  // grouped by network, then host
  const groups = new Map();
  for (const e of r.items) {
    const k = network(e.ip);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(e);
  }
  const cols = ['host', 'port', 'reachable', 'versions', 'group', 'pq', 'trust', 'findings', 'cert', 'scanned'];
  const rows = [];
  for (const [net, list] of [...groups.entries()].sort()) {
    rows.push(h('tr', { class: 'group' }, h('th', { colspan: cols.length, scope: 'rowgroup' }, net, ' ',
      h('span', { class: 'muted' }, t('generic.items', { n: list.length })))));
    list.sort((a, b) => (a.host || a.ip).localeCompare(b.host || b.ip) || a.port - b.port);
    for (const e of list) {
      rows.push(h('tr', { dataset: { endpoint: `${e.ip}:${e.port}` } },
        h('td', null, e.host || e.ip, e.host && e.host !== e.ip ? h('div', { class: 'muted sans' }, e.ip) : null,
          e.sni && e.sni !== e.host ? h('div', { class: 'muted sans' }, 'SNI ' + e.sni) : null),
        h('td', { class: 'num' }, String(e.port)),
        h('td', { class: e.reachable ? 'ok' : 'bad' }, e.reachable ? '✔' : '✘ ' + (e.reason || '')),
        h('td', null, e.versions || '—'),
        h('td', null, e.negotiated_group || '—'),
        // "none": probed, no PQ group accepted; "": not probed (unreachable, for one)
        (e.pq_groups && e.pq_groups !== 'none') ? h('td', { class: 'ok' }, e.pq_groups)
          : h('td', { class: 'muted' }, e.pq_groups === 'none' ? t('ep.nopq') : '—'),
        h('td', null, e.trust || '—'),
        h('td', { class: 'num' }, fmtNum(e.open_findings)),
        h('td', null, e.leaf_cert_id ? h('a', { href: '#/certificates/' + e.leaf_cert_id }, '#' + e.leaf_cert_id) : '—'),
        h('td', { class: 'date' }, fmtTime(e.scanned_at))));
    }
  }
  return h('div', { class: 'table-scroll' }, h('table', { class: 'grid', id: 'endpoints-table' },
    h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col' }, t('ep.col.' + c))))),
    h('tbody', null, rows)));
}

function scanForm(ctx, reload) {
  const targets = h('textarea', { id: 'scan-targets', rows: 2, cols: 40, required: true,
                                  placeholder: 'www.example.com 10.0.0.0/24 192.0.2.1:8443' });
  const ports = h('input', { id: 'scan-ports', placeholder: '443,8443' });
  const status = h('div', { id: 'scan-status', 'aria-live': 'polite' });
  const btn = h('button', { type: 'submit', class: 'primary', id: 'scan-start' }, t('ep.scan.start'));
  return h('form', { class: 'panel inline-form', id: 'scan-form', onsubmit: async (e) => {
    e.preventDefault();
    const list = targets.value.split(/[\s,]+/).filter(Boolean);
    if (!list.length) return;
    btn.disabled = true;
    try {
      const job = await api('POST', '/api/v1/scans', { targets: list, ports: ports.value.trim() || undefined });
      await followJob(job.id, status, ctx.can('GET', '/api/v1/jobs/{id}'));
      await reload();
    } catch (err) {
      clear(status).appendChild(h('p', { class: 'error', role: 'alert' }, t('error', { msg: err.message })));
    }
    btn.disabled = false;
  } },
  h('h3', null, t('ep.scan.title')),
  h('label', { class: 'field' }, t('ep.scan.targets'), targets),
  h('label', { class: 'field' }, t('ep.scan.ports'), ports),
  btn, status);
}

// Endpoints from the scanner: grouped by network and host, with TLS
// versions, groups, PQ support and findings; scans started and followed here.
export async function endpointsPage(ctx) {
  if (!ctx.can('GET', '/api/v1/endpoints')) return modulePage(ctx, 'endpoints');
  const p = { host: ctx.query.get('host') || '', pq: ctx.query.get('pq') || '',
              offset: Number(ctx.query.get('offset')) || 0 };
  const box = h('div', { class: 'table-box', 'aria-live': 'polite' });
  const findingsBox = h('div');
  const scansBox = h('div');
  // The table first; findings (the most severe, with their total) and scans
  // come beside each other after it, each filling its own box.
  const FINDINGS_SHOWN = 200;
  async function loadFindings() {
    const f = await get('/api/v1/findings' + query({ limit: FINDINGS_SHOWN }));
    const total = typeof f.total === 'number' ? f.total : f.items.length;
    clear(findingsBox).append(h('h2', null, t('ep.findings'), ' ', h('span', { class: 'muted', id: 'findings-count' },
      total > f.items.length ? t('ep.findings.some', { n: fmtNum(f.items.length), total: fmtNum(total) })
                             : t('generic.items', { n: total }))),
      f.items.length ? h('div', { class: 'table-scroll' }, h('table', { class: 'grid', id: 'findings-table' },
        h('thead', null, h('tr', null, ['severity', 'type', 'endpoint', 'detail'].map((c) => h('th', { scope: 'col' }, t('ep.f.' + c))))),
        h('tbody', null, f.items.map((x) => h('tr', null,
          h('td', { class: x.severity === 'high' || x.severity === 'critical' ? 'bad' : x.severity === 'medium' ? 'warn' : '' }, x.severity),
          h('td', null, h('code', null, x.type)),
          h('td', null, `${x.host || x.ip}:${x.port}`, x.cert_id ? [' ', h('a', { href: '#/certificates/' + x.cert_id }, '#' + x.cert_id)] : null),
          h('td', { class: 'detail' }, x.detail || '')))))) : h('p', { class: 'muted' }, t('none')));
  }
  async function loadScans() {
    const s = await get('/api/v1/scans?limit=10');
    clear(scansBox).append(h('h2', null, t('ep.scans')),
      s.items.length ? h('table', { class: 'grid', id: 'scans-table' },
        h('thead', null, h('tr', null, ['id', 'started', 'targets', 'status', 'endpoints', 'reachable', 'findings'].map((c) => h('th', { scope: 'col' }, t('ep.s.' + c))))),
        h('tbody', null, s.items.map((x) => h('tr', null, h('td', { class: 'num' }, String(x.id)), h('td', { class: 'date' }, fmtTime(x.started_at)),
          h('td', { class: 'detail' }, x.targets), h('td', null, x.status), h('td', { class: 'num' }, fmtNum(x.endpoints)),
          h('td', { class: 'num' }, fmtNum(x.reachable)), h('td', { class: 'num' }, fmtNum(x.findings))))))
        : h('p', { class: 'muted' }, t('none')));
  }
  const failed = (box) => (e) => {
    clear(box).appendChild(h('p', { class: 'error', role: 'alert' }, t('error', { msg: e.message })));
  };
  async function loadTable() {
    const r = await get('/api/v1/endpoints' + query({ host: p.host || null, pq: p.pq || null, limit: 200, offset: p.offset }));
    clear(box).append(h('p', { id: 'endpoints-count' }, t('certs.count', {
      from: fmtNum(r.total ? r.offset + 1 : 0), to: fmtNum(r.offset + r.items.length), total: fmtNum(r.total) })),
    endpointsTable(r),
    h('div', { class: 'pager' },
      h('button', { type: 'button', disabled: r.offset === 0, onclick: () => { p.offset = Math.max(0, r.offset - 200); loadTable(); } }, t('certs.prev')),
      h('button', { type: 'button', disabled: r.offset + r.items.length >= r.total, onclick: () => { p.offset = r.offset + 200; loadTable(); } }, t('certs.next'))));
    box.dataset.total = String(r.total);
  }
  // After a scan: everything again.  A filter or a page: the table only.
  async function reload() {
    await loadTable();
    const more = [];
    if (ctx.can('GET', '/api/v1/findings')) more.push(loadFindings().catch(failed(findingsBox)));
    if (ctx.can('GET', '/api/v1/scans')) more.push(loadScans().catch(failed(scansBox)));
    return Promise.all(more);
  }
  let debounce = null;
  const filters = h('form', { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
    h('label', { class: 'field' }, t('ep.host'), h('input', { id: 'ep-host', type: 'search', value: p.host, oninput: (e) => {
      clearTimeout(debounce);
      debounce = setTimeout(() => { p.host = e.target.value.trim(); p.offset = 0; loadTable(); }, 250);
    } })),
    h('label', { class: 'field' }, t('ep.pq'), h('select', { id: 'ep-pq', onchange: (e) => { p.pq = e.target.value; p.offset = 0; loadTable(); } },
      h('option', { value: '' }, t('certs.any')), h('option', { value: 'yes', selected: p.pq === 'yes' }, t('ep.pq.yes')),
      h('option', { value: 'none', selected: p.pq === 'none' }, t('ep.pq.none')))));
  await loadTable();
  if (ctx.can('GET', '/api/v1/findings')) loadFindings().catch(failed(findingsBox));
  if (ctx.can('GET', '/api/v1/scans')) loadScans().catch(failed(scansBox));
  return h('div', { class: 'endpoints', dataset: { title: t('endpoints.title') } },
    h('div', { class: 'page-head' }, h('h1', null, t('endpoints.title'))),
    ctx.can('POST', '/api/v1/scans') ? scanForm(ctx, reload) : null,
    filters, box, h('section', { class: 'panel' }, findingsBox), h('section', { class: 'panel' }, scansBox));
}
