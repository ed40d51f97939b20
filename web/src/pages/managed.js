import { api, get } from '../api.js';
import { clear, fmtNum, fmtTime, h } from '../dom.js';
import { t } from '../i18n.js';
import { followJob } from './jobs.js';
import { modulePage } from './module.js';

const KEYS = ['ec256', 'ec384', 'rsa2048', 'rsa3072', 'rsa4096', 'sm2'];

async function history(ctx, m, box) {
  const d = await get('/api/v1/managed/' + m.id);
  clear(box).appendChild(d.history.length ? h('table', { class: 'grid history', dataset: { history: String(m.id) } },
    h('thead', null, h('tr', null, ['created', 'ca', 'state', 'cert', 'error'].map((c) => h('th', { scope: 'col' }, t('mg.h.' + c))))),
    h('tbody', null, d.history.map((o) => h('tr', null, h('td', { class: 'date' }, fmtTime(o.created_at)),
      h('td', null, o.ca || ''), h('td', { class: o.error ? 'bad' : '' }, [o.state, o.status].filter(Boolean).join(' / ')),
      h('td', null, o.cert_id ? h('a', { href: '#/certificates/' + o.cert_id }, '#' + o.cert_id) : ''),
      h('td', { class: 'detail' }, o.error || '')))))
    : h('p', { class: 'muted' }, t('none')));
}

function createForm(ctx, cas, done) {
  const names = h('input', { id: 'mg-names', required: true, size: 40, placeholder: 'www.example.com example.com' });
  const key = h('select', { id: 'mg-key' }, KEYS.map((k) => h('option', { value: k }, k)));
  const dual = h('select', { id: 'mg-dual' }, h('option', { value: '' }, t('none')),
    ['ec256,rsa2048', 'sm2,ec256'].map((k) => h('option', { value: k }, k)));
  const challenge = h('select', { id: 'mg-challenge' }, ['http-01', 'tls-alpn-01', 'dns-01'].map((c) => h('option', { value: c }, c)));
  const webroot = h('input', { id: 'mg-webroot', placeholder: '/var/www/html' });
  const standalone = h('input', { id: 'mg-standalone', placeholder: '0.0.0.0:80' });
  const caBoxes = cas.map((c) => h('input', { type: 'checkbox', value: c.name, id: 'mg-ca-' + c.name }));
  const status = h('div', { id: 'mg-status', 'aria-live': 'polite' });
  const btn = h('button', { type: 'submit', class: 'primary', id: 'mg-create' }, t('mg.create'));
  return h('form', { class: 'panel inline-form', id: 'managed-form', onsubmit: async (e) => {
    e.preventDefault();
    const body = { names: names.value.split(/[\s,]+/).filter(Boolean), key: key.value, challenge: challenge.value };
    if (dual.value) body.dual = dual.value;
    if (webroot.value.trim()) body.webroot = webroot.value.trim();
    if (standalone.value.trim()) body.standalone = standalone.value.trim();
    const chosen = caBoxes.filter((b) => b.checked).map((b) => b.value);
    if (chosen.length) body.cas = chosen;
    btn.disabled = true;
    try {
      const job = await api('POST', '/api/v1/managed', body);
      await followJob(job.id, status, ctx.can('GET', '/api/v1/jobs/{id}'));
      await done();
    } catch (err) {
      clear(status).appendChild(h('p', { class: 'error', role: 'alert' }, t('error', { msg: err.message })));
    }
    btn.disabled = false;
  } },
  h('h3', null, t('mg.new')),
  h('label', { class: 'field' }, t('mg.names'), names),
  h('label', { class: 'field' }, t('mg.key'), key),
  h('label', { class: 'field' }, t('mg.dual'), dual),
  h('label', { class: 'field' }, t('mg.challenge'), challenge),
  h('label', { class: 'field' }, 'webroot', webroot),
  h('label', { class: 'field' }, t('mg.standalone'), standalone),
  cas.length ? h('fieldset', { class: 'field' }, h('legend', null, t('mg.cas')),
    caBoxes.map((b) => h('label', { class: 'inline' }, b, ' ', b.value))) : null,
  btn, status);
}

// Managed certificates: desired state, renewal time and failures; create,
// renew now, and the order history with the reason of every failure.
export async function managedPage(ctx) {
  if (!ctx.can('GET', '/api/v1/managed')) return modulePage(ctx, 'managed');
  const box = h('div', { class: 'table-box' });
  let cas = [];
  if (ctx.can('GET', '/api/v1/acme')) {
    try { cas = (await get('/api/v1/acme')).cas || []; } catch (e) { cas = []; }
  }
  async function reload() {
    const r = await get('/api/v1/managed');
    const canRenew = ctx.can('POST', '/api/v1/managed/{id}/renew');
    clear(box).appendChild(r.items.length ? h('table', { class: 'grid', id: 'managed-table' },
      h('thead', null, h('tr', null, ['name', 'names', 'key', 'ca', 'status', 'cert', 'renew', 'failures', 'error', ''].map((c) =>
        h('th', { scope: 'col' }, c ? t('mg.col.' + c) : '')))),
      h('tbody', null, r.items.map((m) => {
        const hist = h('div');
        const names = Array.isArray(m.identifiers) ? m.identifiers.map((x) => (typeof x === 'object' ? x.value : x)).join(', ') : '';
        return [h('tr', { dataset: { managed: String(m.id) } },
          h('td', null, m.name), h('td', { class: 'detail' }, names), h('td', null, m.key_type || ''),
          h('td', null, m.ca || (Array.isArray(m.cas) ? m.cas.join(' → ') : '')),
          h('td', { class: m.failures ? 'bad' : '' }, m.status || ''),
          h('td', null, m.current_cert_id ? h('a', { href: '#/certificates/' + m.current_cert_id }, '#' + m.current_cert_id) : '—'),
          h('td', { class: 'date' }, fmtTime(m.renew_at)), h('td', { class: 'num' }, fmtNum(m.failures)),
          h('td', { class: 'detail' }, m.last_error || ''),
          h('td', null,
            h('button', { type: 'button', class: 'small', onclick: () => history(ctx, m, hist).catch((e) => { hist.textContent = e.message; }) }, t('mg.history')),
            canRenew ? h('button', { type: 'button', class: 'small', onclick: async (e) => {
              e.target.disabled = true;
              try { await api('POST', `/api/v1/managed/${m.id}/renew`, {}); hist.textContent = t('mg.queued'); } catch (err) { hist.textContent = err.message; }
            } }, t('mg.renew')) : null)),
        h('tr', { class: 'history-row' }, h('td', { colspan: 10 }, hist))];
      }))) : h('p', { class: 'muted' }, t('none')));
    box.dataset.total = String(r.items.length);
  }
  await reload();
  return h('div', { class: 'managed', dataset: { title: t('managed.title') } },
    h('div', { class: 'page-head' }, h('h1', null, t('managed.title'))),
    ctx.can('POST', '/api/v1/managed') ? createForm(ctx, cas, reload) : null,
    box,
    cas.length ? h('section', { class: 'panel' }, h('h2', null, t('mg.cas')),
      h('ul', null, cas.map((c) => h('li', null, h('strong', null, c.name), ' ', h('code', null, c.directory))))) : null);
}
