// bench/dashboard: time the overview, the certificate filters and the endpoints page in Chromium.
// Usage: node measure.mjs URL ADMIN_PASSWORD RUNS   (run from tests/browser)
// Prints one JSON line: medians in milliseconds.
// playwright-core is installed for tests/browser (scripts/install-deps --test).
import { chromium } from '../../tests/browser/node_modules/playwright-core/index.mjs';

const [url, pw, runsArg] = process.argv.slice(2);
const runs = Number(runsArg) || 5;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run'],
});
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
await page.goto(url);
await page.fill('#login-user', 'admin');
await page.fill('#login-password', pw);
// The first overview after the server started: computed, not reused.  From
// the login's answer (the shell drawn) to the charts; the login itself
// (argon2id) is not the dashboard's.
await page.click('#login-submit');
await page.waitForSelector('#who', { timeout: 60000 });
const tLogin = await page.evaluate(() => performance.now());
await page.waitForSelector('.overview[data-charts-ready="1"]', { timeout: 60000 });
const coldMs = await page.evaluate(() => performance.now()) - tLogin;
await page.waitForSelector('[data-figure="violations"]', { timeout: 300000 });

// Overview: a fresh navigation each time (cached assets, as for a user's
// second visit), from navigation start to the charts drawn.
const ov = [];
const ovApi = [];
const ovAll = [];   // navigation start -> every figure there (compliance, PQ readiness)
let total = 0;
for (let i = 0; i < runs; i++) {
  await page.goto('about:blank');   // a new document: performance.now() counts from its navigation start
  await page.goto(url + '#/', { waitUntil: 'commit' });
  await page.waitForSelector('.overview[data-charts-ready="1"]', { timeout: 60000 });
  ov.push(await page.evaluate(() => performance.now()));
  // the compliance figure comes after the charts, then PQ readiness (a pass
  // over the endpoints); let them finish before the next run
  await page.waitForSelector('[data-figure="violations"]', { timeout: 300000 });
  await page.waitForSelector('[data-figure="pq"], [data-figure="pq"][data-na]', { timeout: 300000 });
  ovAll.push(await page.evaluate(() => performance.now()));
  ovApi.push(await page.evaluate(async () => {
    const t = performance.now();
    const r = await fetch('/api/v1/overview', { cache: 'no-store' });
    await r.json();
    return performance.now() - t;
  }));
}
total = Number((await page.textContent('[data-figure="total"] .value')).replace(/[^0-9]/g, ''));

// Filters: from the control's change to the table replaced.
const filters = [
  { name: 'status=expiring 30d', sel: '#f-status', value: 'exp30', q: 'expiring=30d' },
  { name: 'status=expired', sel: '#f-status', value: 'expired', q: 'expired' },
  { name: 'key=p384', sel: '#f-key', value: 'p384', q: 'key_type=p384' },
  { name: 'kind=leaf', sel: '#f-kind', value: 'leaf', q: 'leaf' },
  { name: 'level=ev', sel: '#f-level', value: 'ev', q: 'level=ev' },
];
const out = [];
for (const f of filters) {
  const ui = [];
  const api = [];
  for (let i = 0; i < runs; i++) {
    await page.goto('about:blank');
    await page.goto(url + '#/certificates', { waitUntil: 'commit' });
    await page.waitForSelector('#certs-table', { timeout: 60000 });
    const seq = await page.getAttribute('.table-box', 'data-seq');
    const t = await page.evaluate(() => performance.now());
    await page.selectOption(f.sel, f.value);
    await page.waitForFunction((s) => document.querySelector('.table-box').dataset.seq !== s &&
      !document.querySelector('.table-box').hasAttribute('aria-busy'), seq, { timeout: 60000, polling: 'raf' });
    ui.push(await page.evaluate(() => performance.now()) - t);
    api.push(await page.evaluate(async (q) => {
      const t0 = performance.now();
      const r = await fetch('/api/v1/certificates?limit=50&' + q, { cache: 'no-store' });
      await r.json();
      return performance.now() - t0;
    }, f.q));
  }
  out.push({ name: f.name, ui_ms: median(ui), api_ms: median(api) });
}
// Endpoints: navigation start -> the first page of the table (200 rows,
// grouped by network) and -> the whole page (the 200 most severe findings
// and the scans below it); a filter change (PQ: none) -> the table
// replaced.  Against the API calls alone (and all findings at once).
const epTable = [], epAll = [], epFilter = [], epApi = [], findApi = [], findAllApi = [];
let endpoints = 0, findings = 0;
for (let i = 0; i < runs; i++) {
  await page.goto('about:blank');
  await page.goto(url + '#/endpoints', { waitUntil: 'commit' });
  await page.waitForSelector('#endpoints-table', { timeout: 120000 });
  epTable.push(await page.evaluate(() => performance.now()));
  await page.waitForSelector('#scans-table', { timeout: 300000 });
  await page.waitForSelector('#findings-count', { timeout: 300000 });
  epAll.push(await page.evaluate(() => performance.now()));
  endpoints = Number(await page.getAttribute('.endpoints .table-box', 'data-total'));
  // the API calls alone, the page being idle
  const api = await page.evaluate(async () => {
    const t0 = performance.now();
    await (await fetch('/api/v1/endpoints?limit=200', { cache: 'no-store' })).json();
    const t1 = performance.now();
    await (await fetch('/api/v1/findings?limit=200', { cache: 'no-store' })).json();
    const t2 = performance.now();
    const f = await (await fetch('/api/v1/findings', { cache: 'no-store' })).json();
    return [t1 - t0, t2 - t1, performance.now() - t2, f.items.length];
  });
  epApi.push(api[0]);
  findApi.push(api[1]);
  findAllApi.push(api[2]);
  findings = api[3];
  const before = await page.getAttribute('.endpoints .table-box', 'data-total');
  const t = await page.evaluate(() => performance.now());
  await page.selectOption('#ep-pq', 'none');
  await page.waitForFunction((s) => document.querySelector('.endpoints .table-box').dataset.total !== s &&
    document.getElementById('endpoints-table'), before, { timeout: 120000, polling: 'raf' });
  epFilter.push(await page.evaluate(() => performance.now()) - t);
}
await browser.close();
// ov[0] is the first load after the login's: the server computed the overview
// then (later ones reuse its answer while the inventory is unchanged).
console.log(JSON.stringify({ total, overview_ms: median(ov), overview_first_ms: ov[0], overview_cold_ms: coldMs,
                             overview_api_ms: median(ovApi), overview_all_ms: median(ovAll), filters: out,
                             endpoints, findings, endpoints_table_ms: median(epTable),
                             endpoints_all_ms: median(epAll), endpoints_filter_ms: median(epFilter),
                             endpoints_api_ms: median(epApi), findings_api_ms: median(findApi),
                             findings_all_api_ms: median(findAllApi) }));
