import { get, query } from '../api.js';
import { fmtNum, fmtTime, h } from '../dom.js';
import { t } from '../i18n.js';
import { palette } from '../theme.js';

// ECharts is a chunk of its own: its download starts with the app, its use
// waits for it.
const charts = import('../charts.js');

const KEY_FILTER = /^(rsa|dsa|ec)\d+$|^(ed25519|ed448|sm2)$/;

function listLink(params) {
  return '#/certificates' + query(params);
}

function figure(id, label, value, href) {
  const body = [h('span', { class: 'value' }, fmtNum(value)), h('span', { class: 'label' }, label)];
  return href
    ? h('a', { class: 'figure', href, dataset: { figure: id }, title: t('ov.open') }, body)
    : h('div', { class: 'figure', dataset: { figure: id } }, body);
}

function unavailable(id, label, routes) {
  return h('div', { class: 'figure na', dataset: { figure: id, na: '1' }, title: routes },
    h('span', { class: 'value' }, '—'), h('span', { class: 'label' }, label),
    h('span', { class: 'na-note' }, t('na.short')));
}

// Seconds from now to the end of a UTC day "YYYY-MM-DD": the list filter
// "expiring" is a window from now.
function untilEndOf(day) {
  const end = Date.parse(day + 'T00:00:00Z') + 86400e3;
  return Math.max(1, Math.ceil((end - Date.now()) / 1000));
}
function dayLink(day) {
  return listLink({ expiring: untilEndOf(day) + 's', sort: '-expiry' });
}

export async function overviewPage(ctx) {
  const o = await get('/api/v1/overview');
  const pal = palette();
  const figs = h('section', { class: 'figures', 'aria-label': 'figures' },
    figure('total', t('ov.total'), o.total, listLink({})),
    figure('expired', t('ov.expired'), o.expired, listLink({ expired: true })),
    figure('expiring_7d', t('ov.exp7'), o.expiring_7d, listLink({ expiring: '7d' })),
    figure('expiring_30d', t('ov.exp30'), o.expiring_30d, listLink({ expiring: '30d' })),
    figure('ca', t('ov.ca'), o.ca, listLink({ ca: true })),
    figure('leaf', t('ov.leaf'), o.leaf, listLink({ leaf: true })));

  // Figures whose data other modules provide: shown when the API has them.
  // Compliance evaluates the policy over the whole inventory: it is fetched
  // beside the rest and filled in when it comes, so it never delays the page.
  const extra = [];
  const violationsSlot = h('div', { class: 'slot' });
  const complianceSlot = h('div', { class: 'slot' });
  // Left out when the route exists but this role may not read it (as the API
  // would answer 403); "not available yet" only when the route does not exist.
  const hidden = (path) => ctx.has('GET', path) && !ctx.can('GET', path);
  if (!hidden('/api/v1/compliance')) extra.push(violationsSlot);
  const compliance = ctx.can('GET', '/api/v1/compliance')
    ? get('/api/v1/compliance?violating=1&limit=1').catch((e) => ({ error: e }))
    : Promise.resolve(null);
  // Failing renewals: managed certificates whose last attempts failed.
  if (ctx.can('GET', '/api/v1/managed')) {
    const slot = h('div', { class: 'slot' });
    extra.push(slot);
    get('/api/v1/managed').then((r) => {
      if (slot.isConnected) slot.replaceWith(figure('failing', t('ov.failing'), r.items.filter((m) => m.failures > 0).length, '#/managed'));
    }, (e) => { if (slot.isConnected) slot.replaceWith(unavailable('failing', t('ov.failing'), e.message)); });
  } else if (!hidden('/api/v1/managed')) {
    extra.push(unavailable('failing', t('ov.failing'), 'GET /api/v1/managed'));
  }
  // Ghost certificates: served somewhere but neither imported nor issued
  // through aclm (the scanner's open "unmanaged" findings), each counted once.
  if (ctx.can('GET', '/api/v1/findings')) {
    const slot = h('div', { class: 'slot' });
    extra.push(slot);
    get('/api/v1/findings?type=unmanaged').then((r) => {
      const certs = new Set(r.items.map((f) => f.cert_id ?? f.fingerprint ?? `${f.ip}:${f.port}`));
      if (slot.isConnected) slot.replaceWith(figure('ghost', t('ov.ghost'), certs.size, '#/endpoints'));
    }, (e) => { if (slot.isConnected) slot.replaceWith(unavailable('ghost', t('ov.ghost'), e.message)); });
  } else if (!hidden('/api/v1/findings')) {
    extra.push(unavailable('ghost', t('ov.ghost'), 'GET /api/v1/findings'));
  }
  const pqSlot = h('div', { class: 'slot' });
  const pqPanelSlot = h('div', { class: 'slot' });
  if (!hidden('/api/v1/reports/{kind}')) extra.push(pqSlot);
  const pq = ctx.can('GET', '/api/v1/reports/{kind}')
    ? get('/api/v1/reports/pq-readiness?format=json').catch((e) => ({ error: e }))
    : Promise.resolve(null);
  const figs2 = h('section', { class: 'figures secondary' }, extra);

  // Expiry calendar: the next 12 months by UTC day.
  const from = o.expiry_by_day.from.slice(0, 10);
  const toDate = new Date(Date.parse(from + 'T00:00:00Z') + (o.expiry_by_day.days - 1) * 86400e3);
  const to = toDate.toISOString().slice(0, 10);
  const counts = o.expiry_by_day.counts;
  const max = counts.reduce((m, [, n]) => Math.max(m, n), 1);
  const heatEl = h('div', { class: 'chart heatmap', id: 'chart-heatmap', role: 'img',
                            'aria-label': t('ov.heatmap') });
  const busiest = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 8);
  const heatPanel = h('section', { class: 'panel wide' },
    h('h2', null, t('ov.heatmap')), heatEl,
    counts.length === 0 ? h('p', { class: 'muted' }, t('ov.heatmap.empty')) :
      h('div', { class: 'busiest' }, h('h3', null, t('ov.heatmap.busiest')),
        h('ul', { class: 'chips' }, busiest.map(([d, n]) =>
          h('li', null, h('a', { href: dayLink(d), title: t('ov.through', { day: d }), dataset: { day: d } },
            d, ' · ', fmtNum(n)))))));

  const keysEl = h('div', { class: 'chart', id: 'chart-keys', role: 'img', 'aria-label': t('ov.keys') });
  const keysPanel = h('section', { class: 'panel' }, h('h2', null, t('ov.keys')), keysEl,
    h('ul', { class: 'chips' }, o.keys.map((k) => h('li', null,
      KEY_FILTER.test(k.key) ? h('a', { href: listLink({ key_type: k.key }), dataset: { key: k.key } },
        k.key, ' · ', fmtNum(k.count)) : h('span', null, k.key, ' · ', fmtNum(k.count))))));

  const issuersEl = h('div', { class: 'chart tall', id: 'chart-issuers', role: 'img', 'aria-label': t('ov.issuers') });
  const issuerName = (i) => i.issuer_cn || i.issuer || '—';
  const issuersPanel = h('section', { class: 'panel' }, h('h2', null, t('ov.issuers')), issuersEl,
    h('ol', { class: 'issuers' }, o.issuers.map((i) => h('li', null,
      h('a', { href: listLink({ issuer: i.issuer }), title: i.issuer }, issuerName(i)),
      ' ', h('span', { class: 'muted' }, fmtNum(i.count))))),
    o.other_issuers > 0 ? h('p', { class: 'muted' }, t('ov.others'), ': ', fmtNum(o.other_issuers)) : null);

  const page = h('div', { class: 'overview', dataset: { title: t('nav.overview') } },
    h('div', { class: 'page-head' }, h('h1', null, t('nav.overview')),
      h('span', { class: 'muted', id: 'asof' }, t('ov.asof', { t: fmtTime(o.now) }))),
    figs, figs2, heatPanel, h('div', { class: 'two' }, keysPanel, issuersPanel), complianceSlot, pqPanelSlot);

  // Charts need their boxes in the document to measure them.
  const { chart } = await charts;
  requestAnimationFrame(() => {
    if (!page.isConnected) return;
    const axis = { color: pal.muted };
    chart(heatEl, {
      tooltip: { formatter: (p) => `${p.value[0]}: ${p.value[1]}` },
      visualMap: { min: 0, max, calculable: false, orient: 'horizontal', left: 'center', bottom: 0,
                   inRange: { color: pal.heat }, textStyle: axis, itemHeight: 120 },
      calendar: { range: [from, to], cellSize: ['auto', 13], top: 30, left: 40, right: 20,
                  itemStyle: { color: pal.bg, borderColor: pal.border, borderWidth: 1 },
                  splitLine: { lineStyle: { color: pal.muted, width: 1 } },
                  dayLabel: { color: pal.muted, firstDay: 1, nameMap: ctx.lang === 'zh' ? 'ZH' : 'EN' },
                  monthLabel: { color: pal.muted, nameMap: ctx.lang === 'zh' ? 'ZH' : 'EN' },
                  yearLabel: { show: false } },
      series: [{ type: 'heatmap', coordinateSystem: 'calendar', data: counts }],
    }, (p) => { if (p.value) location.hash = dayLink(p.value[0]); });
    chart(keysEl, {
      color: pal.series,
      grid: { left: 70, right: 20, top: 10, bottom: 30 },
      xAxis: { type: 'value', axisLabel: axis, splitLine: { lineStyle: { color: pal.border } } },
      yAxis: { type: 'category', inverse: true, data: o.keys.map((k) => k.key), axisLabel: axis },
      series: [{ type: 'bar', data: o.keys.map((k) => k.count), colorBy: 'data' }],
    }, (p) => { if (KEY_FILTER.test(p.name)) location.hash = listLink({ key_type: p.name }); });
    chart(issuersEl, {
      color: pal.series,
      grid: { left: 150, right: 20, top: 10, bottom: 30 },
      xAxis: { type: 'value', axisLabel: axis, splitLine: { lineStyle: { color: pal.border } } },
      yAxis: { type: 'category', inverse: true, data: o.issuers.map(issuerName),
               axisLabel: { ...axis, width: 140, overflow: 'truncate' } },
      series: [{ type: 'bar', colorBy: 'data',
                 data: o.issuers.map((i) => ({ value: i.count, dn: i.issuer })) }],
    }, (p) => { if (p.data && p.data.dn) location.hash = listLink({ issuer: p.data.dn }); });
    page.dataset.chartsReady = '1';
  });
  // one after the other: each is a pass over the whole inventory on the server
  compliance.then((c) => fillCompliance(c, violationsSlot, complianceSlot, pal, chart))
    .then(() => pq).then((r) => fillPq(r, pqSlot, pqPanelSlot, pal, chart));
  return page;
}

function fillCompliance(c, figSlot, panelSlot, pal, chart) {
  if (!figSlot.isConnected) return;
  if (c === null || c.error) {
    figSlot.replaceWith(unavailable('violations', t('ov.violations'),
      c === null ? 'GET /api/v1/compliance' : c.error.message));
    panelSlot.remove();
    return;
  }
  const sm = c.summary;
  figSlot.replaceWith(figure('violations', t('ov.violations'),
    sm.certificates.violating + sm.endpoints.violating + sm.sites.violating, '#/policies'));
  const rules = Object.entries(sm.by_rule).filter(([, n]) => n > 0).sort((x, y) => y[1] - x[1]);
  const ruleEl = h('div', { class: 'chart', id: 'chart-rules', role: 'img', 'aria-label': t('ov.c.byrule') });
  panelSlot.replaceWith(h('section', { class: 'panel', id: 'compliance' },
    h('h2', null, t('ov.compliance'), ' ', h('span', { class: 'muted' }, c.policy)),
    h('table', { class: 'grid' }, h('thead', null, h('tr', null, h('th', null, ''),
      ['total', 'compliant', 'violating'].map((k) => h('th', { scope: 'col' }, t('ov.c.' + k))))),
      h('tbody', null, ['certificates', 'endpoints', 'sites'].map((k) => h('tr', null,
        h('th', { scope: 'row' }, t('ov.c.' + k)), h('td', { class: 'num' }, fmtNum(sm[k].total)),
        h('td', { class: 'num ok' }, fmtNum(sm[k].compliant)),
        h('td', { class: 'num bad' }, h('a', { href: '#/policies' }, fmtNum(sm[k].violating))))))),
    h('h3', null, t('ov.c.byrule')), rules.length ? ruleEl : h('p', { class: 'muted' }, t('none'))));
  if (!rules.length) return;
  const axis = { color: pal.muted };
  chart(ruleEl, {
    color: pal.series,
    grid: { left: 150, right: 20, top: 10, bottom: 30 },
    xAxis: { type: 'value', minInterval: 1, axisLabel: axis, splitLine: { lineStyle: { color: pal.border } } },
    yAxis: { type: 'category', inverse: true, data: rules.map((r) => r[0]), axisLabel: axis },
    series: [{ type: 'bar', data: rules.map((r) => r[1]), colorBy: 'data' }],
  }, () => { location.hash = '#/policies'; });
  const page = document.querySelector('.overview');
  if (page) page.dataset.complianceReady = '1';
}

// PQ readiness of the scanned endpoints, from the pq-readiness report's
// summary (classes: X25519MLKEM768, curveSM2MLKEM768, both, none, unknown).
const PQ_REPORT = '/api/v1/reports/pq-readiness?format=html';
function fillPq(r, figSlot, panelSlot, pal, chart) {
  if (!figSlot.isConnected) return;
  if (r === null || r.error || !r.summary || typeof r.summary.total !== 'number') {
    figSlot.replaceWith(unavailable('pq', t('ov.pq'), r && r.error ? r.error.message : 'GET /api/v1/reports/{kind}'));
    panelSlot.remove();
    return;
  }
  const sm = r.summary;
  const n = (k) => (typeof sm[k] === 'number' ? sm[k] : 0);
  const accepting = n('x25519mlkem768') + n('curvesm2mlkem768') - n('both');
  figSlot.replaceWith(h('a', { class: 'figure', href: PQ_REPORT, target: '_blank', rel: 'noopener',
                               dataset: { figure: 'pq' }, title: t('ov.open') },
    h('span', { class: 'value' }, fmtNum(accepting), h('small', { class: 'muted' }, ' / ', fmtNum(sm.total))),
    h('span', { class: 'label' }, t('ov.pq'))));
  if (sm.total === 0) {
    panelSlot.replaceWith(h('section', { class: 'panel', id: 'pq' }, h('h2', null, t('ov.pq')),
      h('p', { class: 'muted' }, t('ov.pq.none'))));
    return;
  }
  const classes = [
    ['x25519', n('x25519mlkem768') - n('both'), 'X25519MLKEM768'],
    ['sm2', n('curvesm2mlkem768') - n('both'), 'curveSM2MLKEM768'],
    ['both', n('both'), t('ov.pq.both')],
    ['none', n('none'), t('ov.pq.neither')],
    ['unknown', n('unknown'), t('ov.pq.unknown')],
  ].filter((c) => c[1] > 0);
  const el = h('div', { class: 'chart', id: 'chart-pq', role: 'img', 'aria-label': t('ov.pq') });
  panelSlot.replaceWith(h('section', { class: 'panel', id: 'pq' }, h('h2', null, t('ov.pq')), el,
    h('ul', { class: 'chips' }, classes.map((c) => h('li', null, c[2], ' · ', fmtNum(c[1])))),
    h('p', null, h('a', { href: PQ_REPORT, target: '_blank', rel: 'noopener' }, t('ov.pq.report')))));
  chart(el, {
    color: pal.series,
    series: [{ type: 'pie', radius: ['40%', '70%'], label: { color: pal.text },
               data: classes.map((c) => ({ name: c[2], value: c[1] })) }],
  });
}
