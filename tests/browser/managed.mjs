// A managed certificate created in the dashboard, issued by the ACME CA of
// the server's configuration (Pebble in the tests), appears with its
// certificate and that certificate's expiry.
// Usage: node managed.mjs --url URL --admin-password PW --name NAME --ca CA
//          --standalone HOST:PORT --shots DIR
// Prints one JSON line; exit 1 with the reason on failure.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (n) => { const i = args.indexOf('--' + n); return i >= 0 ? args[i + 1] : undefined; };
const URL = opt('url');
const SHOTS = opt('shots') || 'shots';
mkdirSync(SHOTS, { recursive: true });
const problems = [];
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run'],
});
let out;
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  await page.goto(URL);
  await page.fill('#login-user', 'admin');
  await page.fill('#login-password', opt('admin-password'));
  await page.click('#login-submit');
  await page.waitForSelector('#who');
  await page.evaluate(() => { location.hash = '#/managed'; });
  await page.waitForSelector('#managed-form');
  await page.fill('#mg-names', opt('name'));
  await page.check('#mg-ca-' + opt('ca'));
  await page.fill('#mg-standalone', opt('standalone'));
  await page.click('#mg-create');
  await page.waitForSelector('#mg-status [data-state="done"], #mg-status [data-state="failed"], #mg-status .error',
                             { timeout: 180000 });
  const status = await page.textContent('#mg-status');
  if (await page.locator('#mg-status [data-state="done"]').count() !== 1) throw new Error('issue job: ' + status);
  const row = page.locator('#managed-table tr[data-managed]').first();
  await row.waitFor();
  const certLink = row.locator('a[href^="#/certificates/"]');
  const certId = (await certLink.getAttribute('href')).split('/').pop();
  await page.screenshot({ path: join(SHOTS, 'managed-issued.png'), fullPage: true });
  // the history of orders
  await row.locator('button', { hasText: /History|历史/ }).click();
  await page.waitForSelector('table.history');
  await certLink.click();
  await page.waitForSelector('#sans');
  if (await page.locator('#managed-link').count() !== 1) throw new Error('the certificate page does not say it is managed');
  const validity = await page.textContent('.kv dd:nth-of-type(4)');
  const cert = await (await context.request.get(URL + 'api/v1/certificates/' + certId)).json();
  const shownExpiry = cert.not_after.replace('T', ' ').replace(/:\d\dZ$/, 'Z');
  if (!validity.includes(shownExpiry)) throw new Error(`detail shows "${validity}", the API's not_after is ${cert.not_after}`);
  await page.screenshot({ path: join(SHOTS, 'managed-certificate.png'), fullPage: true });
  out = { ok: problems.length === 0, cert_id: Number(certId), not_after: cert.not_after, issuer: cert.issuer, problems };
} catch (e) {
  out = { ok: false, error: e.message, problems };
}
await browser.close();
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
