// Two agents on one conversation in a real browser (Debian chromium, playwright-core), at
// 1280 and 390 px, each in a browser context of their own. Started by tests/it/browser.rs:
//   FD_BASE, FD_EMAIL, FD_PASSWORD, FD_TEAMMATE, FD_TEAMMATE_PASSWORD, FD_SECRET, FD_SHOTS,
//   FD_CONVERSATION, FD_WA_ID
// Collision warning: the teammate sees "… is also viewing", then "… is typing…" as the
// owner types; the teammate's Send while the owner types is held ("Send anyway", the text
// kept); the owner's Send after the teammate's reply landed is held too, then sent.
// Snooze (the owner's browser set to Asia/Kolkata, UTC+5:30): a picked date and time 10:30
// reads back as 10:30 in the conversation and in the Snoozed tab; the conversation leaves
// "Needs a human"; the customer writes and it is back, marked "woke from snooze"; the mark
// is cleared; "In 1 hour" and "Wake now". axe-core finds nothing serious or critical;
// no horizontal overflow; fails (exit 1) on any error or script dialog.
import { chromium } from 'playwright-core';
import { createHmac } from 'node:crypto';
import { shots, axe } from './common.mjs';
import assert from 'node:assert/strict';

const env = process.env;
const { FD_BASE: base, FD_SECRET: secret, FD_CONVERSATION: id, FD_WA_ID: waId } = env;
const zone = 'Asia/Kolkata';

/** Posts a signed text webhook from the customer, as Meta would. */
async function webhook(wamid, text) {
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: 'WABA', changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: '15550001111', phone_number_id: 'P1' },
      contacts: [{ profile: { name: 'Two Agents' }, wa_id: waId }],
      messages: [{ from: waId, id: wamid, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }],
    } }] }],
  });
  const sig = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
  const r = await fetch(`${base}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig }, body });
  assert.equal(r.status, 200, 'webhook accepted');
}

/** The day after tomorrow in `zone`, as a datetime-local date (YYYY-MM-DD). */
function dayAfterTomorrow() {
  const d = new Date(Date.now() + 2 * 86_400_000);
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-background-networking'] });
const problems = [];
const pages = [];
/** Set while a step expects a reply to be held (409). */
let holding = false;
try {
  /** A signed-in page in a context of its own. */
  async function agent(email, password, width, height, timezoneId) {
    const context = await browser.newContext({ viewport: { width, height }, timezoneId });
    const page = await context.newPage();
    page.on('dialog', (d) => { problems.push(`a script dialog opened: ${d.message()}`); d.dismiss(); });
    page.on('pageerror', (e) => problems.push(`page error (${email}): ${e.message}`));
    page.on('console', (m) => {
      // A held reply's page answers 409 (the browser logs its status as an error).
      if (m.type() === 'error' && !(holding && m.text().endsWith('status of 409 (Conflict)'))) problems.push(`console error (${email}): ${m.text()}`);
    });
    await page.goto(`${base}/login`);
    await page.fill('input[name="email"]', email);
    await page.fill('input[name="password"]', password);
    await page.click('form[action="/login"] button[type="submit"]');
    await page.waitForURL(`${base}/app`);
    pages.push(page);
    return page;
  }
  const noOverflow = async (page, what) => {
    const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scroll <= width, `${what}: ${scroll} px wide content on a ${width} px screen`);
  };
  const row = (page) => page.locator('ul.conversations li', { hasText: waId });

  for (const [width, height] of [[1280, 900], [390, 844]]) {
    const owner = await agent(env.FD_EMAIL, env.FD_PASSWORD, width, height, zone);
    const sam = await agent(env.FD_TEAMMATE, env.FD_TEAMMATE_PASSWORD, width, height, 'Europe/Amsterdam');
    await owner.goto(`${base}/app/c/${id}`);
    await sam.goto(`${base}/app/c/${id}`);

    // Who else is here: viewing, then typing, pushed live to the other page.
    await sam.locator('p.presence', { hasText: `${env.FD_EMAIL} is also viewing` }).waitFor({ timeout: 5000 });
    await owner.locator('p.presence', { hasText: `${env.FD_TEAMMATE} is also viewing` }).waitFor({ timeout: 5000 });
    const ownerText = `The owner answers at ${width}.`;
    await owner.fill('#composer', ownerText);
    await sam.locator('p.presence', { hasText: `${env.FD_EMAIL} is typing…` }).waitFor({ timeout: 5000 });
    await noOverflow(sam, `presence at ${width} px`);
    await axe(sam, `presence line at ${width} px`);
    await sam.screenshot({ path: `${shots}/30-presence-typing-${width}.png` });

    // Sam sends while the owner types: held, the text kept, then sent anyway.
    const samText = `Sam answers at ${width}.`;
    await sam.fill('#composer', samText);
    holding = true;
    await sam.click('form#reply .send-row button[type="submit"]');
    await sam.locator('div.collision', { hasText: `${env.FD_EMAIL} is typing a reply here right now.` }).waitFor();
    assert.equal(await sam.inputValue('#composer'), samText, 'the held reply is kept');
    await noOverflow(sam, `held reply at ${width} px`);
    await axe(sam, `held reply at ${width} px`);
    await sam.screenshot({ path: `${shots}/31-held-reply-${width}.png` });
    await sam.click('div.collision button[type="submit"]');
    await sam.getByText('Sent. The ticks show').waitFor();
    await sam.locator('ol.thread li.agent', { hasText: samText }).waitFor();

    // The owner's page was loaded before Sam's reply landed: held, then sent.
    await owner.locator('ol.thread li.agent', { hasText: samText }).waitFor({ timeout: 5000 });
    assert.equal(await owner.inputValue('#composer'), ownerText, 'a live update keeps what the owner typed');
    await owner.click('form#reply .send-row button[type="submit"]');
    await owner.locator('div.collision', { hasText: `${env.FD_TEAMMATE} replied since you opened this conversation: “${samText}”` }).waitFor();
    await owner.screenshot({ path: `${shots}/32-held-after-a-reply-${width}.png` });
    await owner.click('div.collision button[type="submit"]');
    await owner.getByText('Sent. The ticks show').waitFor();
    holding = false;
    await sam.context().close();

    // Snooze until a picked time: read in the owner's zone (UTC+5:30) and shown in it.
    await owner.locator('div.snooze').screenshot({ path: `${shots}/36-snooze-form-${width}.png` });
    const day = dayAfterTomorrow();
    await owner.fill('form.snooze input[name="at"]', `${day}T10:30`);
    await owner.click('form.snooze button[value="custom"]');
    await owner.getByText('Snoozed: it leaves the working tabs').waitFor();
    const until = await owner.locator('p.snoozed time.local').textContent();
    assert.match(until, /10:30/, `the wake time in the owner's zone: ${until}`);
    await noOverflow(owner, `snoozed at ${width} px`);
    await axe(owner, `snoozed conversation at ${width} px`);
    await owner.screenshot({ path: `${shots}/33-snoozed-${width}.png` });
    await owner.goto(`${base}/app?view=snoozed`);
    await row(owner).locator('.reason.snoozed', { hasText: '10:30' }).waitFor();
    await noOverflow(owner, `Snoozed tab at ${width} px`);
    await axe(owner, `Snoozed tab at ${width} px`);
    await owner.screenshot({ path: `${shots}/34-snoozed-tab-${width}.png` });
    await owner.goto(`${base}/app?view=human`);
    assert.equal(await row(owner).count(), 0, 'out of "Needs a human" while snoozed');

    // The customer writes: it comes back (live), marked.
    await webhook(`wamid.teamwork-${width}-${Date.now()}`, `Still there? (${width})`);
    await row(owner).locator('.reason.woke', { hasText: 'woke from snooze: the customer wrote' }).waitFor({ timeout: 5000 });
    await axe(owner, `woken conversation in the list at ${width} px`);
    await owner.screenshot({ path: `${shots}/35-woke-${width}.png` });
    await owner.goto(`${base}/app/c/${id}`);
    await owner.locator('div.woke', { hasText: 'Woke from snooze: the customer wrote.' }).waitFor();
    await owner.click('div.woke button[value="wake"]');
    await owner.getByText('Awake: back in the working tabs.').waitFor();
    assert.equal(await owner.locator('div.woke').count(), 0, 'the mark is cleared');

    // One hour, then awake again by hand.
    await owner.click('form.snooze button[value="hour"]');
    await owner.locator('p.snoozed').waitFor();
    await owner.click('p.snoozed + form button[value="wake"]');
    await owner.locator('form.snooze').waitFor();
    await owner.context().close();
  }
} catch (e) {
  problems.push(e.stack || String(e));
  for (const [i, page] of pages.entries()) {
    if (!page.isClosed()) await page.screenshot({ path: `${shots}/failure-teamwork-${i}.png`, fullPage: true }).catch(() => {});
  }
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('browser: teamwork flow passed');
