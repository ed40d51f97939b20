// The dashboard in Debian's Chromium: log in with the keyboard, the
// overview's figures against the list API, filters, an import through the
// UI, the detail page and its PEM, the audit chain, users and tokens, every
// page in English and Chinese, light and dark, a viewer's view, and no
// console error anywhere.  Screenshots of every page go to --shots.
//
// Usage: node dashboard.mjs --url URL --admin-password PW --import FILE
//          --import-name NAME --shots DIR
// Prints one JSON line of what it measured; exit 1 with the reason on failure.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf('--' + n); return i >= 0 ? args[i + 1] : d; };
const URL = opt('url');
const ADMIN_PW = opt('admin-password');
const IMPORT = opt('import');
const IMPORT_NAME = opt('import-name');
const SHOTS = opt('shots', 'shots');
const VIEWER_PW = 'viewer password 1234';
if (!URL || !ADMIN_PW || !IMPORT || !IMPORT_NAME) {
  console.error('usage: node dashboard.mjs --url URL --admin-password PW --import FILE --import-name NAME --shots DIR');
  process.exit(2);
}
mkdirSync(SHOTS, { recursive: true });

const problems = [];      // console errors and page errors, with the page they came from
const report = { pages: [] };
let where = 'start';

function check(cond, msg) {
  if (!cond) throw new Error(`${where}: ${msg}`);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run'],
});

async function newPage() {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 },
                                             acceptDownloads: true });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`${where}: console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`${where}: page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`${where}: request failed: ${r.url()} ${r.failure()?.errorText}`));
  return { context, page };
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, name + '.png'), fullPage: true });
  report.pages.push(name);
}

async function settle(page) {
  await page.waitForLoadState('networkidle');
  await page.waitForFunction(() => !document.querySelector('main p.muted') ||
    !/Loading|加载中/.test(document.querySelector('main').textContent.slice(0, 40)));
}

async function go(page, hash) {
  where = hash;
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForFunction((h) => document.getElementById('app').dataset.rendered === h, hash);
  await settle(page);
}

// The total of the list API for a filter, through the browser's session.
async function apiTotal(context, q) {
  const r = await context.request.get(URL + 'api/v1/certificates?limit=1' + (q ? '&' + q : ''));
  check(r.ok(), `GET certificates?${q}: ${r.status()}`);
  return (await r.json()).total;
}

async function login(page, user, pw) {
  where = 'login ' + user;
  await page.goto(URL);
  await page.waitForSelector('#login-user');
  // keyboard only: the field has focus, Tab to the password, Enter submits
  await page.waitForFunction(() => document.activeElement && document.activeElement.id === 'login-user');
  await page.keyboard.type(user);
  await page.keyboard.press('Tab');
  await page.keyboard.type(pw);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#who');
  await settle(page);
}

try {
  // ---- admin -------------------------------------------------------------
  const { context, page } = await newPage();
  where = 'login page';
  await page.goto(URL);
  await page.waitForSelector('#login-user');
  await shot(page, 'login');
  // a wrong password is refused and said so
  await page.fill('#login-user', 'admin');
  await page.fill('#login-password', 'wrong password');
  await page.click('#login-submit');
  await page.waitForSelector('#login-error:not([hidden])');
  problems.length = 0;   // the 401 of that refusal is expected in the console
  await login(page, 'admin', ADMIN_PW);

  // Endpoints: start a scan of the server itself and watch the endpoint arrive.
  const routes = (await (await context.request.get(URL + 'api/v1/openapi.json')).json()).paths;
  if (routes['/api/v1/scans'] && routes['/api/v1/scans'].post) {
    await go(page, '#/endpoints');
    where = 'scan';
    const self = new globalThis.URL(URL).host;   // 127.0.0.1:PORT
    check(await page.locator(`[data-endpoint="${self}"]`).count() === 0, 'the endpoint is there before the scan');
    await page.fill('#scan-targets', self);
    await page.click('#scan-start');
    await page.waitForSelector('#scan-status [data-state="done"], #scan-status [data-state="failed"], #scan-status .error',
                              { timeout: 120000 });
    check(await page.locator('#scan-status [data-state="done"]').count() === 1,
          'the scan job did not finish: ' + await page.textContent('#scan-status'));
    await page.waitForSelector(`[data-endpoint="${self}"]`);
    report.scanned = self;
    await shot(page, 'endpoints-scanned');
    await go(page, '#/');
  }

  // Overview: every figure equals the list API's total for its filter.
  where = 'overview';
  const t0 = Date.now();
  await page.waitForSelector('.overview[data-charts-ready="1"]');
  report.overview_ms = Date.now() - t0;
  const figures = {};
  for (const [id, q] of [['total', ''], ['expired', 'expired'], ['expiring_7d', 'expiring=7d'],
                         ['expiring_30d', 'expiring=30d'], ['ca', 'ca'], ['leaf', 'leaf']]) {
    const text = await page.textContent(`[data-figure="${id}"] .value`);
    const shown = Number(text.replace(/[^0-9]/g, ''));
    const api = await apiTotal(context, q);
    check(shown === api, `figure ${id} shows ${shown}, the API says ${api}`);
    figures[id] = shown;
  }
  report.figures = figures;
  check(await page.locator('#chart-heatmap canvas').count() >= 1, 'no heatmap canvas');
  check(await page.locator('#chart-keys canvas').count() >= 1, 'no key chart');
  // the figure links to the list behind it
  await page.click('[data-figure="expiring_30d"]');
  await page.waitForSelector('#certs-count');
  where = 'overview -> list';
  check((await page.getAttribute('.table-box', 'data-total')) === String(figures.expiring_30d),
        'the expiring-in-30-days list does not have the figure\'s count');
  await go(page, '#/');
  await page.waitForSelector('.overview[data-charts-ready="1"]');
  await page.waitForSelector('[data-figure="violations"]');   // compliance comes after the rest
  await page.waitForSelector('[data-figure="pq"]');
  await settle(page);
  // PQ readiness: the figure is the report's summary
  where = 'overview pq';
  const pqr = await (await context.request.get(URL + 'api/v1/reports/pq-readiness?format=json')).json();
  const pqText = (await page.textContent('[data-figure="pq"] .value')).replace(/\s/g, '');
  const pqWant = `${pqr.summary.x25519mlkem768 + pqr.summary.curvesm2mlkem768 - pqr.summary.both}/${pqr.summary.total}`;
  check(pqText === pqWant, `PQ figure ${pqText}, the report says ${pqWant}`);
  report.pq = pqText;
  if (routes['/api/v1/findings']) {
    where = 'overview ghost';
    await page.waitForSelector('[data-figure="ghost"]');
    const fr = await (await context.request.get(URL + 'api/v1/findings?type=unmanaged')).json();
    const ghosts = new Set(fr.items.map((f) => f.cert_id ?? f.fingerprint ?? `${f.ip}:${f.port}`)).size;
    const shown = Number((await page.textContent('[data-figure="ghost"] .value')).replace(/[^0-9]/g, ''));
    check(shown === ghosts, `ghost figure ${shown}, the findings say ${ghosts}`);
    report.ghost = shown;
  }
  await shot(page, 'overview');
  // a day of the expiry calendar links to the certificates expiring through it
  where = 'overview day link';
  const dayHref = await page.getAttribute('[data-day]', 'href');
  const expiring = new URLSearchParams(dayHref.split('?')[1]).get('expiring');
  await page.click('[data-day]');
  await page.waitForSelector('#certs-count');
  check((await page.getAttribute('.table-box', 'data-total')) === String(await apiTotal(context, 'expiring=' + expiring)),
        `day link ${dayHref}: list total differs from the API`);
  check((await page.textContent('#f-status option:checked')).includes('UTC'), 'the day filter is not shown as a date');
  await go(page, '#/');
  await page.waitForSelector('.overview[data-charts-ready="1"]');
  // a key link of the algorithm distribution filters the list
  const keyLink = page.locator('[data-key]').first();
  const key = await keyLink.getAttribute('data-key');
  await keyLink.click();
  await page.waitForSelector('#certs-count');
  check((await page.getAttribute('.table-box', 'data-total')) === String(await apiTotal(context, 'key_type=' + key)),
        `key ${key}: list total differs from the API`);

  // Certificates: server-side filter, sort and paging.
  await go(page, '#/certificates');
  await page.waitForSelector('#certs-table');
  await shot(page, 'certificates');
  where = 'certificates filter';
  const before = await page.getAttribute('.table-box', 'data-seq');
  const tf = Date.now();
  await page.fill('#f-name', 'example.test');
  await page.waitForFunction((b) => document.querySelector('.table-box').dataset.seq !== b &&
    !document.querySelector('.table-box').hasAttribute('aria-busy'), before);
  report.filter_ms = Date.now() - tf - 250;  // minus the typing debounce
  const nameTotal = Number(await page.getAttribute('.table-box', 'data-total'));
  check(nameTotal === await apiTotal(context, 'name=example.test'), 'name filter total differs');
  check(nameTotal > 0, 'name filter found nothing');
  check(page.url().includes('name=example.test'), 'the filter is not in the URL');
  await page.selectOption('#f-status', 'expired');
  await page.waitForFunction(() => !document.querySelector('.table-box').hasAttribute('aria-busy') &&
    location.hash.includes('expired'));
  check(Number(await page.getAttribute('.table-box', 'data-total')) ===
        await apiTotal(context, 'name=example.test&expired'), 'name+expired total differs');
  // an id typed in the search offers that certificate
  await page.fill('#f-name', String(1));
  await page.waitForSelector('#direct-link');
  await page.click('#f-reset');
  await page.waitForSelector('#certs-table');
  await page.click('button.sort[data-sort="subject"]');
  await page.waitForFunction(() => location.hash.includes('sort=subject'));
  await page.waitForSelector('#certs-table');

  // Import a file through the UI.
  where = 'import';
  await page.click('#import-box summary');
  await page.setInputFiles('#import-file', IMPORT);
  await page.click('#import-submit');
  await page.waitForSelector('#import-result p');
  const resultText = await page.textContent('#import-result');
  check(await page.locator('#import-result p.ok').count() === 1, 'import failed: ' + resultText);
  const importedHref = await page.getAttribute('#import-result a.imported', 'href');
  const importedId = importedHref.split('/').pop();
  report.imported_id = Number(importedId);
  const listed = await (await context.request.get(URL + 'api/v1/certificates?name=' + encodeURIComponent(IMPORT_NAME))).json();
  check(listed.items.some((c) => String(c.id) === importedId), 'the imported certificate is not listed by name');
  await shot(page, 'certificates-import');

  // Its detail page: SANs, key, chain, where seen, PEM.
  await page.click('#import-result a.imported');
  where = 'detail';
  await page.waitForSelector('#sans');
  await settle(page);
  check((await page.textContent('#sans')).includes(IMPORT_NAME), 'SAN missing on the detail page');
  check((await page.textContent('#observations')).includes('user:admin'), 'the import is not among "where seen"');
  check(await page.locator('#chain li').count() >= 2, 'no chain');
  const pemHref = await page.getAttribute('#pem-download', 'href');
  const pem = await (await context.request.get(new globalThis.URL(pemHref, URL).href)).text();
  check(pem.startsWith('-----BEGIN CERTIFICATE-----'), 'PEM download is not a certificate');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#pem-download')]);
  check(download.suggestedFilename().endsWith('.pem'), 'the download has no .pem name');
  await shot(page, 'certificate-detail');

  // Audit log and its chain.
  await go(page, '#/audit');
  await page.click('#verify');
  await page.waitForSelector('#verify-result [data-intact]');
  check((await page.getAttribute('#verify-result [data-intact]', 'data-intact')) === '1', 'audit chain not intact');
  check((await page.textContent('#events')).includes('api.request'), 'the import is not in the audit log');
  await shot(page, 'audit');

  // Users and tokens: add the viewer, make a token.
  await go(page, '#/users');
  await page.fill('#user-name', 'viewer1');
  await page.fill('#user-password', VIEWER_PW);
  await page.selectOption('#user-role', 'viewer');
  await page.click('#user-add button[type="submit"]');
  await page.waitForSelector('#users-table tr[data-user="viewer1"]');
  await page.fill('#token-name', 'ci');
  await page.click('#token-create button[type="submit"]');
  await page.waitForSelector('#token-secret');
  check((await page.textContent('#token-secret')).length > 20, 'no token shown');
  await shot(page, 'users');

  // Alerts: a channel and a rule made in the UI appear in their lists.
  if (routes['/api/v1/alert-channels']) {
    await go(page, '#/alerts');
    where = 'alerts';
    await page.fill('#ch-name', 'ops-hook');
    await page.selectOption('#ch-kind', 'webhook');
    await page.fill('#ch-url', 'https://127.0.0.1:9/hook');
    await page.click('#channel-add button[type="submit"]');
    await page.waitForSelector('#alert-channels tr[data-name="ops-hook"]');
    await page.fill('#rule-name', 'expiring-soon');
    await page.selectOption('#rule-kind', 'expiry');
    await page.selectOption('#rule-channel', 'ops-hook');
    await page.click('#rule-add button[type="submit"]');
    await page.waitForSelector('#alert-rules tr[data-name="expiring-soon"]');
    check(await page.locator('#alerts-msg .error').count() === 0, await page.textContent('#alerts-msg'));
  }

  // The pages of other modules, as the API has them.
  report.modules = {};
  for (const m of ['endpoints', 'managed', 'alerts', 'policies', 'settings']) {
    await go(page, '#/' + m);
    check(await page.locator('main .error').count() === 0, `${m}: ` + (await page.textContent('main')));
    report.modules[m] = (await page.locator('main [data-na="1"]').count()) ? 'not available' : 'shown';
    await shot(page, m);
  }

  // Dark theme.
  await go(page, '#/');
  await page.selectOption('#theme-select', 'dark');
  await page.waitForSelector('html[data-theme="dark"]');
  await page.waitForSelector('.overview[data-charts-ready="1"]');
  await shot(page, 'overview-dark');
  await go(page, '#/certificates');
  await page.waitForSelector('#certs-table');
  await shot(page, 'certificates-dark');
  await page.selectOption('#theme-select', 'light');

  // Chinese, remembered across a reload, and back.
  where = 'language';
  await go(page, '#/');
  await page.click('#lang-switch');
  await page.waitForSelector('#nav-certificates:text("证书")');
  await page.reload();
  await page.waitForSelector('#nav-certificates:text("证书")');
  check((await page.getAttribute('html', 'lang')) === 'zh-CN', 'html lang is not zh-CN');
  await page.waitForSelector('.overview[data-charts-ready="1"]');
  await shot(page, 'overview-zh');
  for (const p of ['certificates', 'audit', 'users', 'policies']) {
    await go(page, '#/' + p);
    await shot(page, p + '-zh');
  }
  await page.click('#lang-switch');
  await page.waitForSelector('#nav-certificates:text("Certificates")');
  check((await page.getAttribute('html', 'lang')) === 'en', 'html lang is not en after switching back');

  // Keyboard: the skip link and the navigation are reachable with Tab.
  where = 'keyboard';
  await page.keyboard.press('Tab');
  const firstFocus = await page.evaluate(() => document.activeElement.className);
  check(firstFocus.includes('skip'), 'the first Tab stop is not the skip link: ' + firstFocus);
  await page.click('#logout');
  await page.waitForSelector('#login-user');
  await context.close();

  // ---- viewer --------------------------------------------------------------
  const v = await newPage();
  await login(v.page, 'viewer1', VIEWER_PW);
  where = 'viewer';
  check(await v.page.locator('#nav-audit').count() === 0, 'a viewer sees the audit log');
  check(await v.page.locator('#nav-certificates').count() === 1, 'a viewer does not see certificates');
  // pages and figures whose routes need read-all are left out, as the API refuses them
  const readAll = await (await v.context.request.get(URL + 'api/v1/openapi.json')).json();
  if (readAll.paths['/api/v1/compliance']) {
    check(await v.page.locator('#nav-policies').count() === 0, 'a viewer sees the policies page');
    check(await v.page.locator('[data-figure="violations"]').count() === 0, 'a viewer sees policy violations');
  }
  if (readAll.paths['/api/v1/managed']) check(await v.page.locator('#nav-managed').count() === 0, 'a viewer sees managed certificates');
  if (readAll.paths['/api/v1/alerts']) check(await v.page.locator('#nav-alerts').count() === 0, 'a viewer sees the alerts');
  if (readAll.paths['/api/v1/endpoints']) {
    await go(v.page, '#/endpoints');
    check(await v.page.locator('#endpoints-table').count() === 1, 'a viewer does not see the endpoints');
    check(await v.page.locator('#scan-form').count() === 0, 'a viewer may start a scan');
    await shot(v.page, 'viewer-endpoints');
  }
  await go(v.page, '#/certificates');
  await v.page.waitForSelector('#certs-table');
  check(await v.page.locator('#import-box').count() === 0, 'a viewer sees the import');
  await shot(v.page, 'viewer-certificates');
  await go(v.page, '#/users');
  check(await v.page.locator('#users').count() === 0, 'a viewer sees the users');
  check(await v.page.locator('#user-add').count() === 0, 'a viewer sees "add user"');
  check(await v.page.locator('#tokens').count() === 1, 'a viewer does not see their own tokens');
  await shot(v.page, 'viewer-users');
  await go(v.page, '#/');
  await v.page.waitForSelector('.overview[data-charts-ready="1"]');
  await shot(v.page, 'viewer-overview');
  await v.context.close();
} catch (e) {
  await browser.close();
  console.log(JSON.stringify({ ok: false, error: e.message, problems, report }));
  process.exit(1);
}
await browser.close();
if (problems.length) {
  console.log(JSON.stringify({ ok: false, error: 'console errors', problems, report }));
  process.exit(1);
}
console.log(JSON.stringify({ ok: true, ...report }));
