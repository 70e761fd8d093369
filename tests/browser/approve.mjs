// Headless check of the operator console's approval flow: sign in, open the first
// conversation with a waiting draft, edit it, send it, and wait for the confirmation.
//
// Env: CONSOLE_URL, EMAIL, PASSWORD, EDITED_TEXT, SCREENSHOT (png path),
//      VIEWPORT=phone (390x844, touch) optional, CHROMIUM (default /usr/bin/chromium),
//      ALL_MESSAGES=N optional: the conversation holds N messages, more than a page, so
//      "Load older messages" must bring the transcript to all N.
// Prints "ok" and exits 0, or prints the reason and exits 1. Never downloads a browser.
import { chromium } from 'playwright-core';

const OVERALL_MS = 60_000;
const env = process.env;
const screenshotPath = env.SCREENSHOT || 'console-approve.png';
const phone = env.VIEWPORT === 'phone';

let browser = null;
let page = null;
let finished = false;
const consoleLog = [];

async function visibleErrorText() {
  if (!page) return '';
  try {
    return await page.evaluate(() => {
      const el = document.getElementById('error');
      if (!el || el.hidden) return '';
      const text = document.getElementById('error-text');
      return (text || el).textContent.trim();
    });
  } catch {
    return '';
  }
}

async function fail(reason) {
  if (finished) return;
  finished = true;
  const shown = await visibleErrorText();
  console.error(`FAIL: ${reason}`);
  if (shown) console.error(`page error message: ${shown}`);
  if (consoleLog.length) console.error('browser console:\n  ' + consoleLog.slice(-20).join('\n  '));
  if (page) {
    try {
      await page.screenshot({ path: screenshotPath, fullPage: true, timeout: 5000 });
      console.error(`screenshot: ${screenshotPath}`);
    } catch (e) {
      console.error(`no screenshot: ${e.message}`);
    }
  }
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

const overall = setTimeout(() => fail(`timed out after ${OVERALL_MS / 1000} s`), OVERALL_MS);

async function inboxOrError() {
  const h = await page.waitForFunction(
    () => {
      const inbox = document.getElementById('inbox-view');
      if (inbox && !inbox.hidden) return 'inbox';
      const err = document.getElementById('error');
      if (err && !err.hidden && err.textContent.trim()) return 'error';
      return false;
    },
    null,
    { timeout: 20_000, polling: 100 },
  );
  return h.jsonValue();
}

async function main() {
  for (const k of ['CONSOLE_URL', 'EMAIL', 'PASSWORD', 'EDITED_TEXT']) {
    if (!env[k]) throw new Error(`${k} is not set`);
  }
  browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox'],
  });
  const context = await browser.newContext(
    phone
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
      : { viewport: { width: 1280, height: 800 } },
  );
  page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') consoleLog.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleLog.push(`pageerror: ${e.message}`));

  const res = await page.goto(env.CONSOLE_URL, { waitUntil: 'domcontentloaded' });
  if (!res || !res.ok()) throw new Error(`GET ${env.CONSOLE_URL} answered ${res ? res.status() : 'nothing'}`);

  await page.locator('#login-form').waitFor({ state: 'visible' });
  await page.fill('#login-email', env.EMAIL);
  await page.fill('#login-password', env.PASSWORD);
  await page.click('#login-submit');

  // Signed in once the inbox shows; a refusal shows in #error instead.
  if ((await inboxOrError()) !== 'inbox') throw new Error('signing in failed');
  // The draft may arrive a little later, through live updates.
  const row = page.locator('#inbox-list [data-conversation-id][data-draft-waiting]').first();
  await row.waitFor({ state: 'visible', timeout: 30_000 }).catch(async () => {
    throw new Error('no conversation with a waiting draft appeared in the inbox');
  });
  const id = await row.getAttribute('data-conversation-id');
  await row.click();

  const draft = page.locator('#draft-text');
  await draft.waitFor({ state: 'visible' }).catch(() => {
    throw new Error(`conversation ${id} shows no draft`);
  });
  // Only the moves the lifecycle allows: an active conversation cannot be reopened.
  if (await page.locator('.conv-actions [data-action="reopen"]').isVisible()) {
    throw new Error('an open conversation offers Reopen');
  }
  if (!(await page.locator('.conv-actions [data-action="resolve"]').isVisible())) {
    throw new Error('an open conversation does not offer Resolve');
  }
  if (env.ALL_MESSAGES) {
    const all = Number(env.ALL_MESSAGES);
    const shown = () => page.locator('#transcript li.msg').count();
    const first = await shown();
    if (first >= all) throw new Error(`the first page shows ${first} of ${all} messages: no paging to test`);
    await page.click('#load-older').catch(() => {
      throw new Error(`${first} of ${all} messages shown and no "Load older messages"`);
    });
    await page.waitForFunction((n) => document.querySelectorAll('#transcript li.msg').length >= n, all, { timeout: 10_000 })
      .catch(async () => { throw new Error(`after loading older messages ${await shown()} of ${all} are shown`); });
    if (await page.locator('#load-older').count()) throw new Error('"Load older messages" still offered with every message shown');
  }
  await draft.fill(env.EDITED_TEXT);
  // An earlier, unrelated message must not be taken for this send's failure.
  await page.evaluate(() => {
    const err = document.getElementById('error');
    if (err) err.hidden = true;
  });
  await page.click('#edit-send');

  // Whichever comes first: the confirmation, or an error the console shows.
  const outcome = await page.waitForFunction(
    () => {
      const notice = document.getElementById('notice');
      if (notice && !notice.hidden && notice.textContent.includes('Sent')) return 'sent';
      const err = document.getElementById('error');
      if (err && !err.hidden && err.textContent.trim()) return 'error';
      return false;
    },
    null,
    { timeout: 20_000, polling: 100 },
  );
  if ((await outcome.jsonValue()) !== 'sent') throw new Error(`sending the edited draft of ${id} failed`);

  // From the top, so the sticky bar and the confirmation sit where a person sees them.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: screenshotPath, fullPage: true });
  finished = true;
  clearTimeout(overall);
  await browser.close();
  console.log('ok');
  process.exit(0);
}

main().catch((e) => fail(e && e.message ? e.message.split('\n')[0] : String(e)));
