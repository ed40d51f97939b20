// Open URL in Debian's Chromium and print the TLS key exchange group that
// DevTools reports for the main document: {"group": "...", "protocol": "..."}.
// Usage: node pq_group.mjs https://127.0.0.1:PORT/
import { chromium } from 'playwright-core';

const url = process.argv[2];
if (!url) {
  console.error('usage: node pq_group.mjs URL');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--ignore-certificate-errors',
  ],
});
let result = null;
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.responseReceived', (ev) => {
    if (ev.type === 'Document' && ev.response.securityDetails && result === null) {
      const sd = ev.response.securityDetails;
      result = { group: sd.keyExchangeGroup || sd.keyExchange || '', protocol: sd.protocol,
                 cipher: sd.cipher, status: ev.response.status };
    }
  });
  await page.goto(url, { waitUntil: 'load', timeout: 20000 });
  // the event may arrive just after load
  for (let i = 0; i < 50 && result === null; i++) await new Promise((r) => setTimeout(r, 100));
} finally {
  await browser.close();
}
if (result === null) {
  console.error('no securityDetails for the document');
  process.exit(1);
}
console.log(JSON.stringify(result));
