// The REST API under /api/v1 with the session cookie.  The CSRF token of the
// login answer is kept in localStorage and sent as X-CSRF-Token on every
// state-changing request (the cookie itself is HttpOnly).
const CSRF_KEY = 'aclm.csrf';

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.error)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  let payload = body;
  if (method !== 'GET' && method !== 'HEAD') {
    const csrf = localStorage.getItem(CSRF_KEY);
    if (csrf) headers['X-CSRF-Token'] = csrf;
  }
  if (body !== undefined && body !== null && !(body instanceof ArrayBuffer) &&
      !(body instanceof Blob) && typeof body !== 'string') {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  } else if (body instanceof ArrayBuffer || body instanceof Blob) {
    headers['Content-Type'] = 'application/octet-stream';
  }
  const r = await fetch(path, { method, headers, body: payload, credentials: 'same-origin',
                                cache: 'no-store' });
  const ctype = r.headers.get('Content-Type') || '';
  const data = ctype.startsWith('application/json') ? await r.json().catch(() => null)
                                                    : await r.text();
  if (r.status === 401 && !opts.noRedirect) onUnauthorized();
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

export const get = (path, opts) => api('GET', path, undefined, opts);

export async function login(username, password) {
  const r = await api('POST', '/api/v1/login', { username, password }, { noRedirect: true });
  localStorage.setItem(CSRF_KEY, r.csrf_token);
  return r;
}

export async function logout() {
  try { await api('POST', '/api/v1/logout', {}, { noRedirect: true }); } catch (e) { /* gone already */ }
  localStorage.removeItem(CSRF_KEY);
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === false) continue;  // '' and true: a flag
    q.set(k, v === true ? '' : String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

// The API's own description: which routes this server has, and the
// permission each needs (x-aclm-permission).  Modules add routes as they are
// built; pages for missing ones say so.
let routes = null;
export async function apiRoutes() {
  if (routes) return routes;
  const doc = await get('/api/v1/openapi.json');
  const m = new Map();
  for (const [path, ops] of Object.entries(doc.paths || {}))
    for (const [method, op] of Object.entries(ops))
      m.set(method.toUpperCase() + ' ' + path, op['x-aclm-permission'] || 'public');
  routes = m;
  return routes;
}

const RANK = { viewer: 1, auditor: 2, operator: 3, admin: 4 };
const NEED = { public: 0, 'logged-in': 1, 'read-inventory': 1, 'read-all': 2, write: 3, admin: 4 };

// May this role call the route?  As the server decides: the role must reach
// the route's permission.  Unknown routes: no.
export function allowed(routeMap, role, method, path) {
  const perm = routeMap.get(method + ' ' + path);
  if (perm === undefined) return false;
  return (RANK[role] || 0) >= (NEED[perm] ?? 99);
}
