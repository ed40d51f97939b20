// bench/dashboard: time the overview and the certificate filters in Chromium.
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
let total = 0;
for (let i = 0; i < runs; i++) {
  await page.goto('about:blank');   // a new document: performance.now() counts from its navigation start
  await page.goto(url + '#/', { waitUntil: 'commit' });
  await page.waitForSelector('.overview[data-charts-ready="1"]', { timeout: 60000 });
  ov.push(await page.evaluate(() => performance.now()));
  // the compliance figure comes after the charts; let it finish before the next run
  await page.waitForSelector('[data-figure="violations"]', { timeout: 300000 });
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
await browser.close();
// ov[0] is the first load after the login's: the server computed the overview
// then (later ones reuse its answer while the inventory is unchanged).
console.log(JSON.stringify({ total, overview_ms: median(ov), overview_first_ms: ov[0], overview_cold_ms: coldMs,
                             overview_api_ms: median(ovApi), filters: out }));
