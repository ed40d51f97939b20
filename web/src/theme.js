// Light, dark or the system's choice; remembered in localStorage.
const KEY = 'aclm.theme';

export function getTheme() {
  const v = localStorage.getItem(KEY);
  return v === 'light' || v === 'dark' ? v : 'auto';
}
export function setTheme(v) {
  localStorage.setItem(KEY, v);
  applyTheme();
}
export function isDark() {
  const v = getTheme();
  return v === 'dark' || (v === 'auto' && window.matchMedia('(prefers-color-scheme: dark)').matches);
}
export function applyTheme() {
  document.documentElement.dataset.theme = isDark() ? 'dark' : 'light';
}
// Colours for charts, from the CSS variables of the current theme.
export function palette() {
  const cs = getComputedStyle(document.documentElement);
  const v = (n) => cs.getPropertyValue(n).trim();
  return {
    text: v('--text'), muted: v('--muted'), border: v('--border'), bg: v('--panel'),
    accent: v('--accent'), series: [v('--c1'), v('--c2'), v('--c3'), v('--c4'), v('--c5'),
                                     v('--c6'), v('--c7'), v('--c8')],
    heat: [v('--heat0'), v('--heat1'), v('--heat2'), v('--heat3')],
  };
}
