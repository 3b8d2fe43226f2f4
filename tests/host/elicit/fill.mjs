// A real browser fills the passphrase page: headless Chromium (Debian's), driven by
// puppeteer-core. Used by tests/host/elicit_browser.rs.
//
//   node fill.mjs URL        env: BROWSER_MODULES (.cache/browser/node_modules), PASSPHRASE, SAVE_AS (optional: tick "save" with this name),
//                                 CHROMIUM (default /usr/bin/chromium)
//
// Prints one JSON line: what the page showed (the SSID's text, whether the SSID made any
// element), the answer to the submission, and what opening the same link again shows.
// puppeteer-core lives in .cache/browser (tests/deps.sh browser), not beside this script.
import { createRequire } from 'node:module';
const require = createRequire(`${process.env.BROWSER_MODULES}/`);
const puppeteer = require('puppeteer-core');

const url = process.argv[2];
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // root in a container-less test host: Chromium's sandbox needs an unprivileged user.
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'],
});
const out = {};
try {
  const page = await browser.newPage();
  const first = await page.goto(url, { waitUntil: 'domcontentloaded' });
  out.getStatus = first.status();
  out.ssidText = await page.$eval('#ssid', (e) => e.textContent);
  out.ssidElements = await page.$eval('#ssid', (e) => e.children.length);
  out.scripts = await page.$$eval('script', (s) => s.length);
  out.passwordType = await page.$eval('#passphrase', (e) => e.type);
  await page.type('#passphrase', process.env.PASSPHRASE);
  if (process.env.SAVE_AS) {
    await page.click('#save');
    await page.$eval('#name', (e) => { e.value = ''; });
    await page.type('#name', process.env.SAVE_AS);
  }
  const [answer] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'domcontentloaded' }),
    page.click('#submit'),
  ]);
  out.postStatus = answer.status();
  out.postUrl = answer.url();
  out.done = await page.$eval('#done', (e) => e.textContent).catch(() => null);
  out.postBody = await page.content();
  // The same link again: spent.
  const again = await page.goto(url, { waitUntil: 'domcontentloaded' });
  out.againStatus = again.status();
  out.againError = await page.$eval('#error', (e) => e.textContent).catch(() => null);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
