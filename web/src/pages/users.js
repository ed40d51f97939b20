import { api, get } from '../api.js';
import { clear, fmtTime, h } from '../dom.js';
import { t } from '../i18n.js';

const ROLES = ['viewer', 'auditor', 'operator', 'admin'];

function errorLine(box, e) {
  clear(box).appendChild(h('p', { class: 'error', role: 'alert' }, t('error', { msg: e.message })));
}

async function usersSection(ctx) {
  const r = await get('/api/v1/users');
  const msg = h('div', { 'aria-live': 'polite', id: 'users-msg' });
  const name = h('input', { id: 'user-name', required: true, autocomplete: 'off' });
  const pw = h('input', { id: 'user-password', type: 'password', required: true, autocomplete: 'new-password', minlength: 8 });
  const role = h('select', { id: 'user-role' }, ROLES.map((x) => h('option', { value: x, selected: x === 'viewer' }, t('role.' + x))));
  const canDelete = ctx.can('DELETE', '/api/v1/users/{name}');
  return h('section', { class: 'panel', id: 'users' }, h('h2', null, t('users.title')),
    h('table', { class: 'grid', id: 'users-table' },
      h('thead', null, h('tr', null, h('th', null, t('users.name')), h('th', null, t('users.role')),
        h('th', null, t('users.locked')), h('th', null, t('users.created')), h('th', null, ''))),
      h('tbody', null, r.items.map((u) => h('tr', { dataset: { user: u.name } },
        h('td', null, u.name), h('td', null, t('role.' + u.role)), h('td', null, u.locked ? '🔒' : ''),
        h('td', null, fmtTime(u.created_at)),
        h('td', null, canDelete && u.name !== ctx.me.user ? h('button', { type: 'button', class: 'danger small',
          onclick: async () => {
            if (!confirm(t('users.confirm', { name: u.name }))) return;
            try { await api('DELETE', '/api/v1/users/' + encodeURIComponent(u.name)); ctx.rerender(); } catch (e) { errorLine(msg, e); }
          } }, t('users.delete')) : null))))),
    ctx.can('POST', '/api/v1/users') ? h('form', { class: 'inline-form', id: 'user-add', onsubmit: async (e) => {
      e.preventDefault();
      try {
        await api('POST', '/api/v1/users', { name: name.value.trim(), password: pw.value, role: role.value });
        ctx.rerender();
      } catch (err) { errorLine(msg, err); }
    } },
    h('h3', null, t('users.add')),
    h('label', { class: 'field' }, t('users.name'), name),
    h('label', { class: 'field' }, t('users.password'), pw),
    h('label', { class: 'field' }, t('users.role'), role),
    h('button', { type: 'submit', class: 'primary' }, t('users.add'))) : null,
    msg);
}

async function tokensSection(ctx) {
  const r = await get('/api/v1/tokens');
  const msg = h('div', { 'aria-live': 'polite', id: 'tokens-msg' });
  const myRank = ROLES.indexOf(ctx.me.role);
  const name = h('input', { id: 'token-name', required: true, autocomplete: 'off' });
  const role = h('select', { id: 'token-role' }, ROLES.slice(0, myRank + 1).map((x) =>
    h('option', { value: x, selected: x === ctx.me.role }, t('role.' + x))));
  const expires = h('select', { id: 'token-expires' }, ['7d', '30d', '90d', '365d'].map((x) =>
    h('option', { value: x, selected: x === '90d' }, x)));
  return h('section', { class: 'panel', id: 'tokens' }, h('h2', null, t('tokens.title')),
    r.items.length ? h('table', { class: 'grid', id: 'tokens-table' },
      h('thead', null, h('tr', null, ['name', 'user', 'role', 'lookup', 'state', 'expires'].map((c) =>
        h('th', null, t('tokens.' + c))), h('th', null, ''))),
      h('tbody', null, r.items.map((k) => h('tr', null, h('td', null, k.name), h('td', null, k.user),
        h('td', null, t('role.' + k.role)), h('td', null, h('code', null, k.lookup)), h('td', null, k.state),
        h('td', null, fmtTime(k.expires_at)),
        h('td', null, k.state === 'valid' ? h('button', { type: 'button', class: 'danger small', onclick: async () => {
          if (!confirm(t('tokens.confirm', { name: k.name }))) return;
          try { await api('DELETE', '/api/v1/tokens/' + encodeURIComponent(k.lookup)); ctx.rerender(); } catch (e) { errorLine(msg, e); }
        } }, t('tokens.revoke')) : null)))))
      : h('p', { class: 'muted' }, t('none')),
    h('form', { class: 'inline-form', id: 'token-create', onsubmit: async (e) => {
      e.preventDefault();
      try {
        const k = await api('POST', '/api/v1/tokens', { name: name.value.trim(), role: role.value, expires: expires.value });
        // Shown once: the table is reloaded under it, the secret stays on screen.
        const secret = h('div', { class: 'panel secret', role: 'status' }, h('p', null, t('tokens.shown')),
          h('code', { class: 'wrap', id: 'token-secret' }, k.token));
        await ctx.rerender();
        const box = document.getElementById('tokens-msg');
        if (box) clear(box).appendChild(secret);
      } catch (err) { errorLine(msg, err); }
    } },
    h('h3', null, t('tokens.create')),
    h('label', { class: 'field' }, t('tokens.name'), name),
    h('label', { class: 'field' }, t('tokens.role'), role),
    h('label', { class: 'field' }, t('tokens.expiresin'), expires),
    h('button', { type: 'submit', class: 'primary' }, t('tokens.create'))),
    msg);
}

export async function usersPage(ctx) {
  const parts = [];
  if (ctx.can('GET', '/api/v1/users')) parts.push(await usersSection(ctx));
  parts.push(await tokensSection(ctx));
  return h('div', { class: 'users', dataset: { title: t('nav.users') } },
    h('div', { class: 'page-head' }, h('h1', null, t('nav.users'))), parts);
}
