import { api, get } from '../api.js';
import { clear, h } from '../dom.js';
import { t } from '../i18n.js';
import { modulePage, renderData } from './module.js';

const CHANNEL_KINDS = ['email', 'webhook', 'slack', 'dingtalk', 'wecom', 'feishu'];
const RULE_KINDS = ['expiry', 'renewal-failed', 'cert-changed', 'ghost', 'unreachable'];

function msgLine(box, e) {
  clear(box).appendChild(h('p', { class: 'error', role: 'alert' }, t('error', { msg: e.message })));
}

// A list whose rows may be deleted by name (operator and above).
function namedTable(ctx, items, deletePath, msg, cols) {
  if (!items.length) return h('p', { class: 'muted' }, t('none'));
  const canDelete = ctx.can('DELETE', deletePath + '/{name}');
  return h('div', { class: 'table-scroll' }, h('table', { class: 'grid' },
    h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col' }, c)), canDelete ? h('th', null, '') : null)),
    h('tbody', null, items.map((it) => h('tr', { dataset: { name: it.name } },
      cols.map((c) => h('td', null, it[c] === null || it[c] === undefined ? '' :
        typeof it[c] === 'object' ? JSON.stringify(it[c]) : String(it[c]))),
      canDelete ? h('td', null, h('button', { type: 'button', class: 'danger small', onclick: async () => {
        if (!confirm(t('al.confirm', { name: it.name }))) return;
        try { await api('DELETE', deletePath + '/' + encodeURIComponent(it.name)); ctx.rerender(); } catch (e) { msgLine(msg, e); }
      } }, t('users.delete'))) : null)))));
}

function channelForm(ctx, msg) {
  const f = {
    name: h('input', { id: 'ch-name', required: true }),
    kind: h('select', { id: 'ch-kind' }, CHANNEL_KINDS.map((k) => h('option', { value: k }, k))),
    url: h('input', { id: 'ch-url', required: true, size: 36, placeholder: 'smtp://mail.example.com:587 / https://…' }),
    from: h('input', { id: 'ch-from', placeholder: 'aclm@example.com' }),
    to: h('input', { id: 'ch-to', placeholder: 'ops@example.com, …' }),
    secret: h('input', { id: 'ch-secret', type: 'password', autocomplete: 'new-password' }),
  };
  return h('form', { class: 'inline-form', id: 'channel-add', onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: f.name.value.trim(), kind: f.kind.value, url: f.url.value.trim() };
    if (f.kind.value === 'email') {
      body.from = f.from.value.trim();
      body.to = f.to.value.split(/[\s,]+/).filter(Boolean);
      if (f.secret.value) body.password = f.secret.value;
    } else if (f.secret.value) {
      body.secret = f.secret.value;
    }
    try { await api('POST', '/api/v1/alert-channels', body); ctx.rerender(); } catch (err) { msgLine(msg, err); }
  } },
  h('h3', null, t('al.channel.add')),
  h('label', { class: 'field' }, t('al.name'), f.name), h('label', { class: 'field' }, t('al.kind'), f.kind),
  h('label', { class: 'field' }, 'URL', f.url), h('label', { class: 'field' }, t('al.from'), f.from),
  h('label', { class: 'field' }, t('al.to'), f.to), h('label', { class: 'field' }, t('al.secret'), f.secret),
  h('button', { type: 'submit', class: 'primary' }, t('al.add')));
}

function ruleForm(ctx, channels, msg) {
  const f = {
    name: h('input', { id: 'rule-name', required: true }),
    kind: h('select', { id: 'rule-kind' }, RULE_KINDS.map((k) => h('option', { value: k }, k))),
    channel: h('select', { id: 'rule-channel', required: true }, channels.map((c) => h('option', { value: c.name }, c.name))),
    renotify: h('input', { id: 'rule-renotify', placeholder: '1d / never', size: 10 }),
  };
  return h('form', { class: 'inline-form', id: 'rule-add', onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: f.name.value.trim(), kind: f.kind.value, channel: f.channel.value };
    if (f.renotify.value.trim()) body.renotify = f.renotify.value.trim();
    try { await api('POST', '/api/v1/alert-rules', body); ctx.rerender(); } catch (err) { msgLine(msg, err); }
  } },
  h('h3', null, t('al.rule.add')),
  h('label', { class: 'field' }, t('al.name'), f.name), h('label', { class: 'field' }, t('al.kind'), f.kind),
  h('label', { class: 'field' }, t('al.channel'), f.channel), h('label', { class: 'field' }, t('al.renotify'), f.renotify),
  h('button', { type: 'submit', class: 'primary', disabled: channels.length === 0 }, t('al.add')));
}

// Alerts raised, and the rules and channels that raise and carry them.
export async function alertsPage(ctx) {
  const need = ['/api/v1/alerts', '/api/v1/alert-rules', '/api/v1/alert-channels'];
  if (!need.every((p) => ctx.can('GET', p))) return modulePage(ctx, 'alerts');
  const [alerts, rules, channels] = await Promise.all(need.map((p) => get(p)));
  const msg = h('div', { 'aria-live': 'polite', id: 'alerts-msg' });
  const canWrite = ctx.can('POST', '/api/v1/alert-channels');
  return h('div', { class: 'alerts', dataset: { title: t('alerts.title') } },
    h('div', { class: 'page-head' }, h('h1', null, t('alerts.title'))), msg,
    h('section', { class: 'panel', id: 'alerts-list' }, h('h2', null, t('al.alerts')), renderData(alerts)),
    h('section', { class: 'panel', id: 'alert-rules' }, h('h2', null, t('al.rules')),
      namedTable(ctx, rules.items, '/api/v1/alert-rules', msg, ['name', 'kind', 'channel', 'params', 'renotify_seconds', 'enabled']),
      canWrite ? ruleForm(ctx, channels.items, msg) : null),
    h('section', { class: 'panel', id: 'alert-channels' }, h('h2', null, t('al.channels')),
      namedTable(ctx, channels.items, '/api/v1/alert-channels', msg, ['name', 'kind', 'config']),
      canWrite ? channelForm(ctx, msg) : null));
}
