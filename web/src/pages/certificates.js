import { api, get, query } from '../api.js';
import { clear, fmtDate, fmtNum, fmtTime, h } from '../dom.js';
import { t } from '../i18n.js';
import { followJob } from './jobs.js';

const FILTERS = ['name', 'issuer', 'key_type', 'expiring', 'expired', 'valid', 'ca', 'leaf', 'level',
                 'sort', 'limit', 'offset'];
const COLUMNS = [
  { id: 'id', label: 'certs.col.id', sort: 'id' },
  { id: 'subject', label: 'certs.col.subject', sort: 'subject' },
  { id: 'issuer', label: 'certs.col.issuer', sort: 'issuer' },
  { id: 'key', label: 'certs.col.key', sort: 'key' },
  { id: 'not_before', label: 'certs.col.notbefore', sort: 'not-before' },
  { id: 'not_after', label: 'certs.col.expiry', sort: 'expiry' },
  { id: 'days_left', label: 'certs.col.days', sort: 'expiry' },
];
const KEYS = ['rsa', 'rsa2048', 'rsa3072', 'rsa4096', 'ec', 'p256', 'p384', 'p521', 'ed25519', 'ed448', 'sm2', 'dsa'];

function statusOf(p) {
  if (p.expired !== undefined) return 'expired';
  if (p.valid !== undefined) return 'valid';
  if (p.expiring) return ['7d', '30d', '90d'].includes(p.expiring) ? 'exp' + p.expiring.replace('d', '') : 'custom';
  return '';
}

// "expiring=86399s" (a calendar day of the overview) reads as a date.
function customLabel(v) {
  const m = /^(\d+)s$/.exec(v || '');
  if (m) {
    const end = new Date(Date.now() + Number(m[1]) * 1000 - 1000);
    return t('certs.through', { day: end.toISOString().slice(0, 10) });
  }
  return t('certs.custom', { d: v });
}

function daysClass(d) {
  return d < 0 ? 'bad' : d < 7 ? 'bad' : d < 30 ? 'warn' : 'ok';
}

// The list: every filter, the order and the page live in the URL (#/certificates?...),
// and the server does the work (GET /api/v1/certificates).
export async function certificatesPage(ctx) {
  const p = {};
  for (const k of FILTERS) if (ctx.query.has(k)) p[k] = ctx.query.get(k);
  // Filters change only the table: the form keeps its focus while typing.
  const setParams = (changes, keepOffset) => {
    Object.assign(p, changes);
    if (!keepOffset) delete p.offset;
    for (const k of Object.keys(p)) if (p[k] === null || p[k] === undefined || (p[k] === '' && !['expired', 'valid', 'ca', 'leaf'].includes(k))) delete p[k];
    const q = new URLSearchParams();
    for (const k of FILTERS) if (k in p) q.set(k, p[k]);
    const s = q.toString();
    history.replaceState(null, '', '#/certificates' + (s ? '?' + s : ''));
    load();
  };
  const tableBox = h('div', { class: 'table-box', 'aria-live': 'polite' }, h('p', { class: 'muted' }, t('loading')));
  let debounce = null;
  const textInput = (id, key, label) => h('label', { class: 'field' }, label,
    h('input', { id, type: 'search', value: p[key] || '', oninput: (e) => {
      clearTimeout(debounce);
      debounce = setTimeout(() => setParams({ [key]: e.target.value.trim() }), 250);
    } }));
  const status = statusOf(p);
  const statusSel = h('select', { id: 'f-status', onchange: (e) => {
    const v = e.target.value;
    setParams({ expired: v === 'expired' ? '' : null, valid: v === 'valid' ? '' : null,
                expiring: /^exp\d+$/.test(v) ? v.slice(3) + 'd' : v === 'custom' ? p.expiring : null });
  } },
  h('option', { value: '' }, t('certs.any')),
  h('option', { value: 'valid', selected: status === 'valid' }, t('certs.valid')),
  h('option', { value: 'expired', selected: status === 'expired' }, t('certs.expired')),
  h('option', { value: 'exp7', selected: status === 'exp7' }, t('certs.exp7')),
  h('option', { value: 'exp30', selected: status === 'exp30' }, t('certs.exp30')),
  h('option', { value: 'exp90', selected: status === 'exp90' }, t('certs.exp90')),
  status === 'custom' ? h('option', { value: 'custom', selected: true }, customLabel(p.expiring)) : null);
  const kind = p.ca !== undefined ? 'ca' : p.leaf !== undefined ? 'leaf' : '';
  const kindSel = h('select', { id: 'f-kind', onchange: (e) =>
    setParams({ ca: e.target.value === 'ca' ? '' : null, leaf: e.target.value === 'leaf' ? '' : null }) },
  h('option', { value: '' }, t('certs.any')),
  h('option', { value: 'ca', selected: kind === 'ca' }, t('certs.ca')),
  h('option', { value: 'leaf', selected: kind === 'leaf' }, t('certs.leaf')));
  const keys = KEYS.includes(p.key_type) || !p.key_type ? KEYS : [p.key_type, ...KEYS];
  const keySel = h('select', { id: 'f-key', onchange: (e) => setParams({ key_type: e.target.value }) },
    h('option', { value: '' }, t('certs.any')),
    keys.map((k) => h('option', { value: k, selected: p.key_type === k }, k)));
  const levelSel = h('select', { id: 'f-level', onchange: (e) => setParams({ level: e.target.value }) },
    h('option', { value: '' }, t('certs.any')),
    ['dv', 'ov', 'iv', 'ev'].map((l) => h('option', { value: l, selected: p.level === l }, l.toUpperCase())));

  const filters = h('form', { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
    textInput('f-name', 'name', t('certs.search')),
    textInput('f-issuer', 'issuer', t('certs.issuer')),
    h('label', { class: 'field' }, t('certs.key'), keySel),
    h('label', { class: 'field' }, t('certs.status'), statusSel),
    h('label', { class: 'field' }, t('certs.kind'), kindSel),
    h('label', { class: 'field' }, t('certs.level'), levelSel),
    h('button', { type: 'button', class: 'ghost', id: 'f-reset', onclick: () => {
      history.replaceState(null, '', '#/certificates');
      ctx.rerender();
    } }, t('certs.reset')));

  const page = h('div', { class: 'certificates', dataset: { title: t('certs.title') } },
    h('div', { class: 'page-head' }, h('h1', null, t('certs.title'))),
    ctx.can('POST', '/api/v1/certificates') ? importBox(ctx) : null,
    filters, tableBox);

  let seq = 0;
  function load() {
    const mine = ++seq;
    const q = { ...p, limit: Number(p.limit) || 50, offset: Number(p.offset) || 0 };
    const t0 = performance.now();
    tableBox.setAttribute('aria-busy', 'true');
    get('/api/v1/certificates' + query(q)).then((r) => {
      if (mine !== seq) return;
      clear(tableBox).appendChild(table(r, p, setParams));
      tableBox.dataset.ms = String(Math.round(performance.now() - t0));
      tableBox.dataset.total = String(r.total);
      tableBox.dataset.seq = String(mine);
      tableBox.removeAttribute('aria-busy');
    }, (e) => {
      if (mine !== seq) return;
      clear(tableBox).appendChild(h('p', { class: 'error', role: 'alert' }, t('error', { msg: e.message })));
      tableBox.removeAttribute('aria-busy');
    });
  }
  load();
  return page;
}

// A search that looks like an id or a fingerprint (prefix) also offers the
// certificate itself: the API resolves either.
function directLink(text) {
  if (!text || !(/^\d+$/.test(text) || /^[0-9a-f:]{8,95}$/i.test(text))) return null;
  return h('p', { class: 'direct' }, h('a', { href: '#/certificates/' + encodeURIComponent(text), id: 'direct-link' },
    t('certs.open', { ref: text })));
}

function table(r, p, setParams) {
  const sort = p.sort || 'expiry';
  const desc = sort.startsWith('-');
  const sortKey = desc ? sort.slice(1) : sort;
  const head = h('tr', null, COLUMNS.map((c) => {
    const active = c.sort === sortKey && c.id !== 'days_left';
    return h('th', { scope: 'col', 'aria-sort': active ? (desc ? 'descending' : 'ascending') : null },
      h('button', { type: 'button', class: 'sort' + (active ? ' active' : ''), dataset: { sort: c.sort },
                    onclick: () => setParams({ sort: active && !desc ? '-' + c.sort : c.sort }) },
        t(c.label), active ? (desc ? ' ▼' : ' ▲') : ''));
  }));
  const rows = r.items.map((c) => h('tr', null,
    h('td', null, h('a', { href: '#/certificates/' + c.id }, String(c.id))),
    h('td', { class: 'subject' }, h('a', { href: '#/certificates/' + c.id, title: c.subject },
      c.subject_cn || c.subject || '—'),
    c.sans && c.sans.length ? h('div', { class: 'sans muted' }, c.sans.slice(0, 3).join(', ') +
                                (c.sans.length > 3 ? ` +${c.sans.length - 3}` : '')) : null,
    c.is_ca ? h('span', { class: 'tag' }, 'CA') : null),
    h('td', { title: c.issuer }, c.issuer_cn || c.issuer || '—'),
    h('td', null, c.key),
    h('td', { class: 'date' }, fmtDate(c.not_before)),
    h('td', { class: 'date' }, fmtDate(c.not_after)),
    h('td', { class: 'num ' + daysClass(c.days_left) }, fmtNum(c.days_left))));
  const from = r.total === 0 ? 0 : r.offset + 1;
  const to = r.offset + r.items.length;
  const pager = h('div', { class: 'pager' },
    h('span', { id: 'certs-count' }, t('certs.count', { from: fmtNum(from), to: fmtNum(to), total: fmtNum(r.total) })),
    h('button', { type: 'button', id: 'page-prev', disabled: r.offset === 0,
                  onclick: () => setParams({ offset: Math.max(0, r.offset - r.limit) }, true) }, t('certs.prev')),
    h('button', { type: 'button', id: 'page-next', disabled: to >= r.total,
                  onclick: () => setParams({ offset: r.offset + r.limit }, true) }, t('certs.next')),
    h('label', { class: 'inline' }, t('certs.pagesize') + ' ',
      h('select', { id: 'page-size', onchange: (e) => setParams({ limit: e.target.value }) },
        [25, 50, 100, 250].map((n) => h('option', { value: n, selected: r.limit === n }, n)))));
  return h('div', null, directLink(p.name),
    h('table', { class: 'grid', id: 'certs-table' }, h('thead', null, head),
      h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: COLUMNS.length, class: 'muted' }, t('certs.empty'))))),
    pager);
}

function importBox(ctx) {
  const file = h('input', { type: 'file', id: 'import-file', accept: '.pem,.crt,.cer,.der,.p7b,.p7c' });
  const out = h('div', { id: 'import-result', 'aria-live': 'polite' });
  const form = h('form', { class: 'import', onsubmit: async (e) => {
    e.preventDefault();
    clear(out);
    const f = file.files && file.files[0];
    if (!f) return;
    try {
      const r = await api('POST', '/api/v1/certificates', await f.arrayBuffer());
      const fresh = r.certificates.filter((c) => c.new).length;
      out.appendChild(h('p', { class: 'ok', role: 'status' }, t('certs.import.done', { n: r.certificates.length, new: fresh }),
        ' ', r.certificates.map((c) => h('a', { href: '#/certificates/' + c.id, class: 'imported' }, '#' + c.id, ' '))));
      for (const pr of r.problems || []) out.appendChild(h('p', { class: 'warn' }, pr));
    } catch (err) {
      out.appendChild(h('p', { class: 'error', role: 'alert' }, t('error', { msg: err.message })));
    }
  } },
  h('label', { class: 'field' }, t('certs.import.file'), file),
  h('button', { type: 'submit', class: 'primary', id: 'import-submit' }, t('certs.import.submit')));
  return h('details', { class: 'panel import-box', id: 'import-box' },
    h('summary', null, t('certs.import')), h('p', { class: 'muted' }, t('certs.import.help')), form, out);
}

// RFC 5280 reasons a revocation from here may give (the CA-compromise ones
// are the CA's own to state).
const REASONS = ['unspecified', 'keyCompromise', 'superseded', 'affiliationChanged', 'cessationOfOperation',
                 'privilegeWithdrawn', 'certificateHold'];
// What the last revocation answered, shown once on the page drawn after it.
let revokeFlash = null;

// Revoke: a dialog choosing the reason; POST .../revoke answers at once for
// the built-in CA's certificates and with a job for an ACME CA's, which is
// followed here; then the page is drawn again, showing the revocation.
function revokeDialog(ctx, c) {
  const reason = h('select', { id: 'revoke-reason', required: true },
    REASONS.map((r) => h('option', { value: r }, t('revoke.reason.' + r))));
  const out = h('div', { id: 'revoke-error', 'aria-live': 'polite' });
  const confirm = h('button', { type: 'submit', class: 'danger', id: 'revoke-confirm' }, t('revoke.confirm'));
  const dlg = h('dialog', { id: 'revoke-dialog', class: 'panel', 'aria-labelledby': 'revoke-title' });
  const done = (msg) => {
    revokeFlash = { id: c.id, msg };
    dlg.close();
    dlg.remove();
    ctx.rerender();
  };
  const form = h('form', { method: 'dialog', onsubmit: async (e) => {
    e.preventDefault();
    clear(out);
    confirm.disabled = true;
    try {
      const r = await api('POST', `/api/v1/certificates/${c.id}/revoke`, { reason: reason.value });
      if (r.job_id) {
        const j = await followJob(r.job_id, out, ctx.can('GET', '/api/v1/jobs/{id}'));
        if (j && j.state === 'failed') {
          out.appendChild(h('p', { class: 'error', role: 'alert' }, t('revoke.failed', { msg: j.last_error || '' })));
          confirm.disabled = false;
          return;
        }
        done(j ? t('revoke.done.acme', { ca: r.ca, reason: t('revoke.reason.' + r.reason) })
               : t('revoke.queued', { id: r.job_id }));
      } else {
        done(t('revoke.done.ca', { ca: r.ca, serial: r.serial, reason: t('revoke.reason.' + r.reason) }));
      }
    } catch (err) {
      out.appendChild(h('p', { class: 'error', role: 'alert' }, t('error', { msg: err.message })));
      confirm.disabled = false;
    }
  } },
  h('h2', { id: 'revoke-title' }, t('revoke.title', { id: c.id })),
  h('p', null, c.subject_cn || c.subject, ' · ', h('code', null, c.serial)),
  h('p', { class: 'warn' }, t('revoke.warning')),
  h('label', { class: 'field' }, t('revoke.reason'), reason),
  h('div', { class: 'dialog-buttons' },
    h('button', { type: 'button', id: 'revoke-cancel', onclick: () => { dlg.close(); dlg.remove(); } }, t('revoke.cancel')),
    confirm),
  out);
  dlg.appendChild(form);
  dlg.addEventListener('cancel', () => dlg.remove());
  return dlg;
}

function revocationText(r) {
  const by = r.by === 'ca' ? t('revoke.by.ca', { ca: r.ca }) : t('revoke.by.acme', { ca: r.ca || '' });
  return [r.revoked_at ? fmtTime(r.revoked_at) : '', r.reason ? t('revoke.reason.' + r.reason) : '', by]
    .filter(Boolean).join(' · ');
}

// One certificate: identity, validity, key, names, the chain through the
// inventory, where it was seen, its PEM.
export async function certificatePage(ctx) {
  const c = await get('/api/v1/certificates/' + encodeURIComponent(ctx.params.id));
  const chain = [];
  let cur = c;
  for (let i = 0; i < 8 && cur.issuer_id && cur.issuer_id !== cur.id; i++) {
    try {
      cur = await get('/api/v1/certificates/' + cur.issuer_id);
    } catch (e) {
      break;
    }
    chain.push(cur);
  }
  // managed by aclm? (the desired state and its renewals are on the managed page)
  let managed = null;
  if (ctx.can('GET', '/api/v1/managed')) {
    try {
      managed = (await get('/api/v1/managed')).items.find((m) => m.current_cert_id === c.id) || null;
    } catch (e) { managed = null; }
  }
  // its history (the audit log's events about it) and key reuse
  let history = null;
  if (ctx.can('GET', '/api/v1/events')) {
    try {
      history = (await get('/api/v1/events' + query({ subject: c.fingerprint, limit: 50 }))).items;
    } catch (e) { history = null; }
  }
  let sameKey = [];
  try {
    sameKey = (await get(`/api/v1/certificates/${c.id}/same-key`)).items;
  } catch (e) { sameKey = []; }
  const last = chain.length ? chain[chain.length - 1] : c;
  const selfSigned = last.subject === last.issuer;
  const dl = (pairs) => h('dl', { class: 'kv' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
  const keyText = [c.key_type.toUpperCase(), c.key_bits ? `${c.key_bits} bit` : '', c.curve || ''].filter(Boolean).join(' · ');
  const left = c.days_left;
  const rev = c.revocation || null;
  const revoked = !!(rev && rev.revoked);
  const flash = revokeFlash && revokeFlash.id === c.id ? revokeFlash.msg : null;
  revokeFlash = null;
  const canRevoke = !revoked && ctx.can('POST', '/api/v1/certificates/{id}/revoke');
  return h('div', { class: 'certificate', dataset: { title: t('cert.title', { id: c.id }), revoked: revoked ? '1' : '0' } },
    h('div', { class: 'page-head' },
      h('h1', null, t('cert.title', { id: c.id }), ': ', c.subject_cn || c.subject,
        revoked ? h('span', { class: 'tag bad', id: 'revoked-tag' }, t('revoke.revoked')) : null),
      h('a', { href: '#/certificates', class: 'button ghost' }, t('cert.back')),
      h('a', { href: `/api/v1/certificates/${c.id}/pem`, download: `cert-${c.id}.pem`, class: 'button primary',
               id: 'pem-download' }, t('cert.pem')),
      canRevoke ? h('button', { type: 'button', class: 'danger', id: 'revoke-open', onclick: (e) => {
        const dlg = revokeDialog(ctx, c);
        e.target.closest('.certificate').appendChild(dlg);
        dlg.showModal();
        dlg.querySelector('#revoke-reason').focus();
      } }, t('revoke.button')) : null),
    flash ? h('p', { class: 'ok panel', role: 'status', id: 'revoke-result' }, flash) : null,
    h('div', { class: 'two' },
      h('section', { class: 'panel' }, dl([
        [t('cert.subject'), c.subject],
        [t('cert.issuer'), c.issuer_id ? h('a', { href: '#/certificates/' + c.issuer_id }, c.issuer) : c.issuer],
        [t('cert.serial'), h('code', null, c.serial)],
        [t('cert.validity'), h('span', null, fmtTime(c.not_before), ' → ', fmtTime(c.not_after), ' ',
          h('span', { class: 'tag ' + daysClass(left) }, left >= 0 ? t('cert.daysleft', { n: left }) : t('cert.expiredago', { n: -left })))],
        revoked ? [t('revoke.revoked'), h('span', { class: 'bad', id: 'revocation' }, revocationText(rev))] : null,
        [t('cert.sigalg'), c.sig_alg],
        c.level ? [t('cert.level'), c.level.toUpperCase()] : null,
        [t('cert.isca'), c.is_ca ? t('cert.yes') : t('cert.no')],
        [t('cert.fingerprint'), h('code', { class: 'wrap' }, c.fingerprint)],
        [t('cert.firstseen'), fmtTime(c.first_seen)],
        managed ? [t('cert.managed'), h('a', { href: '#/managed', id: 'managed-link' }, managed.name, ' · ',
          managed.status || '', managed.renew_at ? ' · ' + t('cert.renewat', { t: fmtTime(managed.renew_at) }) : '')] : null,
      ])),
      h('section', { class: 'panel' }, h('h2', null, t('cert.key')), dl([
        [t('cert.key'), keyText],
        [t('cert.spki'), h('code', { class: 'wrap' }, c.spki_sha256)],
        [t('cert.privkey'), c.has_private_key ? t('cert.yes') : t('cert.no')],
      ]),
      h('h2', null, t('cert.sans')),
      c.sans.length ? h('ul', { class: 'sans-list', id: 'sans' }, c.sans.map((s) => h('li', null, h('code', null, s))))
                    : h('p', { class: 'muted' }, t('none')))),
    h('section', { class: 'panel' }, h('h2', null, t('cert.chain')),
      h('ol', { class: 'chain', id: 'chain' },
        h('li', null, h('strong', null, c.subject_cn || c.subject)),
        chain.map((x) => h('li', null, h('a', { href: '#/certificates/' + x.id }, x.subject_cn || x.subject),
          ' ', h('span', { class: 'muted' }, fmtDate(x.not_after)))),
        h('li', { class: 'muted' }, selfSigned ? t('cert.chain.self') : t('cert.chain.unknown')))),
    h('section', { class: 'panel' }, h('h2', null, t('cert.seen')),
      c.observations.length ? h('table', { class: 'grid', id: 'observations' },
        h('thead', null, h('tr', null, h('th', null, t('cert.seen.source')), h('th', null, t('cert.seen.location')),
          h('th', null, t('cert.seen.at')))),
        h('tbody', null, c.observations.map((o) => h('tr', null, h('td', null, o.source),
          h('td', null, h('code', null, o.location || '—')), h('td', null, fmtTime(o.seen_at))))))
        : h('p', { class: 'muted' }, t('none'))),
    sameKey.length ? h('section', { class: 'panel' }, h('h2', null, t('cert.samekey')),
      h('ul', { class: 'sans-list', id: 'same-key' }, sameKey.map((x) => h('li', null,
        h('a', { href: '#/certificates/' + x.id }, x.subject_cn || x.subject), ' ',
        h('span', { class: 'muted' }, fmtDate(x.not_after)))))) : null,
    history ? h('section', { class: 'panel' }, h('h2', null, t('cert.history')),
      history.length ? h('table', { class: 'grid', id: 'history' },
        h('thead', null, h('tr', null, h('th', null, t('cert.seen.at')), h('th', null, t('cert.history.event')),
          h('th', null, t('cert.history.who')))),
        h('tbody', null, history.map((e) => h('tr', null, h('td', null, fmtTime(e.at)),
          h('td', null, h('code', null, e.type)),
          h('td', null, (e.detail && e.detail.actor) || '—')))))
        : h('p', { class: 'muted' }, t('none'))) : null);
}
