// Revoke from the certificate page: a viewer sees no Revoke button; an
// operator opens the dialog (in Chinese, then English), chooses the reason,
// confirms, reads the result, and the page shows the certificate revoked
// with that reason; the button is gone then.  No console error.
// Usage: node revoke.mjs --url URL --cert ID --operator USER:PW --viewer USER:PW --shots DIR
// Prints one JSON line; exit 1 with the reason on failure.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (n) => { const i = args.indexOf('--' + n); return i >= 0 ? args[i + 1] : undefined; };
const URL = opt('url');
const CERT = opt('cert');
const SHOTS = opt('shots') || 'shots';
const [OP_USER, OP_PW] = (opt('operator') || '').split(/:(.*)/s);
const [VIEW_USER, VIEW_PW] = (opt('viewer') || '').split(/:(.*)/s);
if (!URL || !CERT || !OP_PW || !VIEW_PW) {
  console.error('usage: node revoke.mjs --url URL --cert ID --operator USER:PW --viewer USER:PW --shots DIR');
  process.exit(2);
}
mkdirSync(SHOTS, { recursive: true });
const problems = [];
let where = 'start';
const check = (cond, msg) => { if (!cond) throw new Error(`${where}: ${msg}`); };

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run'],
});

async function session(user, pw) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`${where}: console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`${where}: page error: ${e.message}`));
  where = 'login ' + user;
  await page.goto(URL);
  await page.fill('#login-user', user);
  await page.fill('#login-password', pw);
  await page.click('#login-submit');
  await page.waitForSelector('#who');
  return { context, page };
}

async function certPage(page) {
  where = 'certificate ' + CERT;
  const hash = '#/certificates/' + CERT;
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForFunction((h) => document.getElementById('app').dataset.rendered === h, hash);
  await page.waitForSelector('.certificate');
}

let out;
try {
  // A viewer: the page, no Revoke.
  const viewer = await session(VIEW_USER, VIEW_PW);
  await certPage(viewer.page);
  check(await viewer.page.locator('#revoke-open').count() === 0, 'a viewer sees the Revoke button');
  await viewer.page.screenshot({ path: join(SHOTS, 'revoke-viewer.png'), fullPage: true });
  await viewer.context.close();

  const { page } = await session(OP_USER, OP_PW);
  await certPage(page);
  check(await page.getAttribute('.certificate', 'data-revoked') === '0', 'revoked before anyone revoked it');
  // In Chinese: the button and the dialog are translated.
  where = 'zh';
  await page.click('#lang-switch');
  await page.waitForFunction(() => document.documentElement.lang === 'zh-CN');
  await page.waitForSelector('#revoke-open');
  const zhButton = (await page.textContent('#revoke-open')).trim();
  check(zhButton === '吊销…', 'the button in Chinese is ' + zhButton);
  await page.click('#revoke-open');
  await page.waitForSelector('#revoke-dialog[open]');
  const zhTitle = (await page.textContent('#revoke-title')).trim();
  check(zhTitle.startsWith('吊销证书'), 'the dialog title in Chinese is ' + zhTitle);
  await page.screenshot({ path: join(SHOTS, 'revoke-dialog-zh.png'), fullPage: true });
  // Cancel: nothing happens.
  await page.click('#revoke-cancel');
  await page.waitForSelector('#revoke-dialog', { state: 'detached' });
  await page.click('#lang-switch');
  await page.waitForFunction(() => document.documentElement.lang === 'en');

  // Revoke, with the keyboard for the reason.
  where = 'revoke';
  await page.waitForSelector('#revoke-open');
  await page.click('#revoke-open');
  await page.waitForSelector('#revoke-dialog[open]');
  check(await page.evaluate(() => document.activeElement && document.activeElement.id) === 'revoke-reason',
        'the reason does not have the focus');
  await page.selectOption('#revoke-reason', 'superseded');
  await page.screenshot({ path: join(SHOTS, 'revoke-dialog.png'), fullPage: true });
  await page.click('#revoke-confirm');
  await page.waitForSelector('#revoke-result', { timeout: 120000 });
  const result = (await page.textContent('#revoke-result')).trim();
  await page.waitForSelector('#revoked-tag');
  const state = (await page.textContent('#revocation')).trim();
  check(/superseded/.test(state), 'the revocation shown is ' + state);
  check(await page.getAttribute('.certificate', 'data-revoked') === '1', 'the page does not say revoked');
  check(await page.locator('#revoke-open').count() === 0, 'Revoke is still offered');
  // the history lists the event
  const history = await page.textContent('#history');
  check(history.includes('certificate.revoked'), 'the history has no certificate.revoked');
  await page.screenshot({ path: join(SHOTS, 'revoke-done.png'), fullPage: true });
  check(problems.length === 0, 'console errors: ' + problems.join('; '));
  out = { ok: true, result, state };
} catch (e) {
  out = { ok: false, where, error: String(e && e.message || e), problems };
}
await browser.close();
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
