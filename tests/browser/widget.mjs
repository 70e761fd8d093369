// Headless check of the customer's web chat: the shop's welcome above an empty
// conversation, the assistant's reply labelled as the assistant's with its choices as
// buttons, the choices still there after a reload, and a pick sent as the customer's answer.
//
// Env: CHAT_URL, WELCOME, QUESTION, CHOICE (the first choice offered), SCREENSHOT,
//      CHROMIUM (default /usr/bin/chromium).
// Prints "ok" and exits 0, or prints the reason and exits 1. Never downloads a browser.
import { chromium } from 'playwright-core';

const env = process.env;
const shot = env.SCREENSHOT || 'widget.png';
let browser = null;
let page = null;

async function fail(reason) {
  console.error(`FAIL: ${reason}`);
  if (page) {
    await page.screenshot({ path: shot, fullPage: true, timeout: 5000 }).catch(() => {});
    console.error(`screenshot: ${shot}`);
  }
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

setTimeout(() => fail('timed out after 90 s'), 90_000);

async function main() {
  for (const k of ['CHAT_URL', 'WELCOME', 'QUESTION', 'CHOICE']) {
    if (!env[k]) throw new Error(`${k} is not set`);
  }
  browser = await chromium.launch({ executablePath: env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  page = await (await browser.newContext({ viewport: { width: 420, height: 760 } })).newPage();
  page.setDefaultTimeout(30_000);
  await page.goto(env.CHAT_URL, { waitUntil: 'domcontentloaded' });

  const welcome = page.locator('.msg.welcome');
  await welcome.waitFor({ state: 'visible' }).catch(() => { throw new Error('no welcome message'); });
  if (!(await welcome.textContent()).includes(env.WELCOME)) throw new Error('the welcome is not the shop\'s');

  await page.fill('#text', env.QUESTION);
  await page.click('#send');
  const reply = page.locator('.msg.assistant:not(.welcome)').first();
  await reply.waitFor({ state: 'visible' }).catch(() => { throw new Error('no reply arrived'); });
  if ((await reply.locator('.who').textContent()) !== 'Assistant') throw new Error('the reply is not labelled as the assistant\'s');
  const buttons = page.locator('.choices button');
  await buttons.first().waitFor({ state: 'visible' }).catch(() => { throw new Error('the reply offers no choices'); });

  // A reload reads the transcript: the offer is still there, as text and as buttons.
  await page.reload({ waitUntil: 'domcontentloaded' });
  await page.locator('.msg.assistant .offered').first().waitFor({ state: 'visible' })
    .catch(() => { throw new Error('after a reload the offered choices are gone from the message'); });
  if (await page.locator('.msg.welcome').count()) throw new Error('a conversation with messages shows the welcome');
  const again = page.locator('.choices button', { hasText: env.CHOICE });
  await again.waitFor({ state: 'visible' }).catch(() => { throw new Error('after a reload the choices are not offered'); });
  await again.click();
  await page.locator('.msg.customer', { hasText: env.CHOICE }).waitFor({ state: 'visible' })
    .catch(() => { throw new Error('the pick was not sent as the customer\'s message'); });
  if (await page.locator('.choices').count()) throw new Error('the choices stay after a pick');

  await page.screenshot({ path: shot, fullPage: true });
  await browser.close();
  console.log('ok');
  process.exit(0);
}

main().catch((e) => fail(e && e.message ? e.message.split('\n')[0] : String(e)));
