// Headless check of an admin's day in the console: answer an escalated conversation with
// their own text and correct the customer's name in its contact details (the suggested reply is offered for editing, never for one-click
// approval), change the shop's name in the settings (a merge patch: nothing else changes),
// edit a product's price and stock in the catalogue, write an FAQ, and add an operator's account and
// then disable it.
//
// Env: CONSOLE_URL, EMAIL, PASSWORD, CONVERSATION_ID (the escalated one), ANSWER,
//      SHOP_NAME, SKU, PRICE, STOCK, NEW_USER, LEAD_NAME, SCREENSHOT (png path), CHROMIUM (default /usr/bin/chromium).
// Prints "ok" and exits 0, or prints the reason and exits 1. Never downloads a browser.
import { chromium } from 'playwright-core';

const env = process.env;
const shot = env.SCREENSHOT || 'console-shop.png';
let browser = null;
let page = null;
const consoleLog = [];

async function fail(reason) {
  console.error(`FAIL: ${reason}`);
  if (consoleLog.length) console.error('browser console:\n  ' + consoleLog.slice(-20).join('\n  '));
  if (page) {
    try {
      const shown = await page.evaluate(() => {
        const el = document.getElementById('error');
        return el && !el.hidden ? el.textContent.trim() : '';
      });
      if (shown) console.error(`page error message: ${shown}`);
      await page.screenshot({ path: shot, fullPage: true, timeout: 5000 });
      console.error(`screenshot: ${shot}`);
    } catch (e) {
      console.error(`no screenshot: ${e.message}`);
    }
  }
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

setTimeout(() => fail('timed out after 90 s'), 90_000);

async function notice(text) {
  await page.waitForFunction((t) => {
    const n = document.getElementById('notice');
    const e = document.getElementById('error');
    if (e && !e.hidden && e.textContent.trim()) return true;
    return n && !n.hidden && n.textContent.includes(t);
  }, text, { timeout: 20_000, polling: 100 });
  const err = await page.evaluate(() => {
    const e = document.getElementById('error');
    return e && !e.hidden ? e.textContent.trim() : '';
  });
  if (err) throw new Error(`the console showed an error: ${err}`);
}

async function main() {
  for (const k of ['CONSOLE_URL', 'EMAIL', 'PASSWORD', 'CONVERSATION_ID', 'ANSWER', 'SHOP_NAME', 'SKU', 'PRICE', 'STOCK', 'NEW_USER', 'LEAD_NAME']) {
    if (!env[k]) throw new Error(`${k} is not set`);
  }
  browser = await chromium.launch({ executablePath: env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.setDefaultTimeout(20_000);
  page.on('console', (m) => { if (m.type() === 'error') consoleLog.push(`${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => consoleLog.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => d.accept());

  await page.goto(env.CONSOLE_URL, { waitUntil: 'domcontentloaded' });
  await page.fill('#login-email', env.EMAIL);
  await page.fill('#login-password', env.PASSWORD);
  await page.click('#login-submit');
  await page.locator('#inbox-view').waitFor({ state: 'visible' });

  // 1. The escalation: no Approve, the suggestion only on request, the operator's own answer.
  await page.goto(`${env.CONSOLE_URL}#/conversations/${env.CONVERSATION_ID}`);
  await page.waitForFunction(() => {
    const t = document.getElementById('draft-title');
    const p = document.getElementById('draft-panel');
    return p && !p.hidden && t && t.textContent.startsWith('Escalated');
  }, null, { timeout: 20_000 }).catch(() => { throw new Error('the escalated conversation shows no escalation panel'); });
  if (await page.locator('#approve').isVisible()) throw new Error('an escalation offers Approve');
  if ((await page.inputValue('#draft-text')) !== '') throw new Error('the suggested reply is prefilled');
  await page.keyboard.press('a'); // the approve shortcut must do nothing here
  await page.click('#use-suggestion');
  if ((await page.inputValue('#draft-text')).trim() === '') throw new Error('"Start from the suggested reply" filled nothing');
  await page.fill('#draft-text', env.ANSWER);
  await page.click('#edit-send');
  await notice('Sent');

  // 1b. The customer's contact details, corrected by hand.
  await page.click('#lead-summary');
  await page.fill('#lead-form input[name="name"]', env.LEAD_NAME);
  await page.locator('#lead-form button[type="submit"]').click();
  await notice('Contact details saved');

  // 2. The settings: one field of the profile.
  await page.goto(`${env.CONSOLE_URL}#/settings`);
  const profile = page.locator('form[data-section="profile"]');
  await profile.waitFor({ state: 'visible' }).catch(() => { throw new Error('no profile section in the settings'); });
  await profile.getByLabel('Name', { exact: true }).fill(env.SHOP_NAME);
  await profile.locator('button.save').click();
  await page.locator('form[data-section="profile"] .section-ok').waitFor({ state: 'visible' })
    .catch(() => { throw new Error('saving the profile did not say "Saved."'); });

  // 3. The catalogue: one product's price and stock.
  await page.goto(`${env.CONSOLE_URL}#/shop`);
  const row = page.locator(`#product-rows tr[data-sku="${env.SKU}"]`);
  await row.waitFor({ state: 'visible' }).catch(() => { throw new Error(`no row for ${env.SKU} in the catalogue`); });
  await row.getByRole('button', { name: 'Edit' }).click();
  const editing = page.locator(`#product-rows tr.editing[data-sku="${env.SKU}"]`);
  await editing.locator('input[name="price"]').fill(env.PRICE);
  await editing.locator('input[name="stock"]').fill(env.STOCK);
  await editing.getByRole('button', { name: 'Save' }).click();
  await notice(`Saved ${env.SKU}`);

  // 3a. Another product deleted (the confirm dialog is accepted).
  if (env.DELETE_SKU) {
    const gone = page.locator(`#product-rows tr[data-sku="${env.DELETE_SKU}"]`);
    await gone.getByRole('button', { name: 'Edit' }).click();
    await page.locator(`#product-rows tr.editing[data-sku="${env.DELETE_SKU}"]`).getByRole('button', { name: 'Delete' }).click();
    await notice(`Deleted ${env.DELETE_SKU}`);
  }

  // 3b. The knowledge base: an FAQ written by hand.
  await page.fill('#new-doc-title', 'Do you gift wrap?');
  await page.fill('#new-doc-body', 'Yes, in recycled paper, for 3 EUR.');
  await page.locator('#doc-add button[type="submit"]').click();
  await notice('Added "Do you gift wrap?"');
  await page.locator('#doc-list li', { hasText: 'Do you gift wrap?' }).waitFor({ state: 'visible' })
    .catch(() => { throw new Error('the new document is not listed'); });

  // 4. The accounts: a new operator, then disabled (the confirm dialog is accepted).
  await page.goto(`${env.CONSOLE_URL}#/users`);
  await page.locator(`#user-rows tr[data-user="${env.EMAIL}"]`).waitFor({ state: 'visible' })
    .catch(() => { throw new Error('the users view does not list the signed-in owner'); });
  await page.fill('#new-user-email', env.NEW_USER);
  await page.selectOption('#new-user-role', 'operator');
  await page.fill('#new-user-password', 'a long new passphrase');
  await page.locator('#user-add button[type="submit"]').click();
  await notice(`${env.NEW_USER} added`);
  const user = page.locator(`#user-rows tr[data-user="${env.NEW_USER}"]`);
  await user.getByRole('button', { name: 'Disable' }).click();
  await page.locator(`#user-rows tr[data-user="${env.NEW_USER}"] td:nth-child(3)`)
    .filter({ hasText: 'Disabled' }).waitFor({ state: 'visible' })
    .catch(() => { throw new Error('the new account does not show as disabled'); });

  await page.screenshot({ path: shot, fullPage: true });
  await browser.close();
  console.log('ok');
  process.exit(0);
}

main().catch((e) => fail(e && e.message ? e.message.split('\n')[0] : String(e)));
