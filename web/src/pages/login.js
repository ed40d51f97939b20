import { login } from '../api.js';
import { h } from '../dom.js';
import { t } from '../i18n.js';

export function loginPage({ onLogin }) {
  const msg = h('p', { class: 'error', role: 'alert', id: 'login-error', hidden: true });
  const user = h('input', { id: 'login-user', name: 'username', autocomplete: 'username', required: true });
  const pw = h('input', { id: 'login-password', name: 'password', type: 'password',
                          autocomplete: 'current-password', required: true });
  const btn = h('button', { type: 'submit', id: 'login-submit', class: 'primary' }, t('login.submit'));
  const form = h('form', { class: 'login card', onsubmit: async (e) => {
    e.preventDefault();
    btn.disabled = true;
    msg.hidden = true;
    try {
      const me = await login(user.value, pw.value);
      await onLogin(me);
    } catch (err) {
      msg.textContent = t('login.failed', { msg: err.message });
      msg.hidden = false;
      btn.disabled = false;
      pw.select();
    }
  } },
  h('h1', null, t('login.title')),
  h('label', { for: 'login-user' }, t('login.user')), user,
  h('label', { for: 'login-password' }, t('login.password')), pw,
  msg, btn);
  setTimeout(() => user.focus(), 0);
  return form;
}
