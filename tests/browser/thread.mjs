// A long conversation in a real browser (Debian chromium, playwright-core), at 390 px (a
// phone) and 1280 px. Started by tests/it/browser.rs with a conversation of 130+ entries:
//   FD_BASE, FD_EMAIL, FD_PASSWORD, FD_SHOTS, FD_SECRET, FD_CONVERSATION, FD_WA_ID, FD_TEAMMATE
// The page renders only the newest page of the thread and opens on the newest message,
// with the composer on screen without scrolling; "Earlier messages" loads the pages
// before in place (no repeats, in order) until the first message; a message arriving live
// joins the end without losing the loaded pages; without script, the link is a plain page.
// The conversation is assigned to a teammate from the "Assign to" picker, and back to nobody;
// it gets a priority and a label, shown in the list, where the label filters it; removed again.
// axe-core finds nothing serious; no horizontal overflow.
import { chromium } from 'playwright-core';
import { createHmac } from 'node:crypto';
import { shots, axe } from './common.mjs';
import assert from 'node:assert/strict';

const { FD_BASE: base, FD_EMAIL: email, FD_PASSWORD: password, FD_SECRET: secret, FD_CONVERSATION: id, FD_WA_ID: waId } = process.env;
const PAGE = 50;
/** A teammate to assign the conversation to (FD_TEAMMATE). */
const teammate = process.env.FD_TEAMMATE;

/** Posts a signed text webhook, as Meta would. */
async function webhook(from, wamid, text) {
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: 'WABA', changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: '15550001111', phone_number_id: 'P1' },
      contacts: [{ profile: { name: 'Long Thread' }, wa_id: from }],
      messages: [{ from, id: wamid, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }],
    } }] }],
  });
  const sig = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
  const r = await fetch(`${base}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig }, body });
  assert.equal(r.status, 200, 'webhook accepted');
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-background-networking'] });
const problems = [];
let page = null;
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  page = await context.newPage();
  page.on('dialog', (d) => { problems.push(`a script dialog opened: ${d.message()}`); d.dismiss(); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  await page.goto(`${base}/login`);
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', password);
  await page.click('form[action="/login"] button[type="submit"]');
  await page.waitForURL(`${base}/app`);

  const entries = () => page.evaluate(() => [...document.querySelectorAll('ol.thread li[data-key]')].map((li) => ({ key: li.dataset.key, at: Number(li.dataset.at) })));
  const noOverflow = async (what) => {
    const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scroll <= width, `${what}: ${scroll} px wide content on a ${width} px screen`);
  };
  const inOrderOnce = (list, what) => {
    assert.equal(new Set(list.map((e) => e.key)).size, list.length, `${what}: no entry twice`);
    for (let i = 1; i < list.length; i++) assert.ok(list[i - 1].at <= list[i].at, `${what}: oldest first`);
  };

  let total = 0;
  for (const [width, height] of [[390, 844], [1280, 900]]) {
    await page.setViewportSize({ width, height });
    await page.goto(`${base}/app/c/${id}`);
    await page.locator('a.earlier').waitFor();
    // Only the newest page is rendered.
    const first = await entries();
    assert.equal(first.length, PAGE, `${width} px: the newest ${PAGE} entries`);
    inOrderOnce(first, `${width} px newest page`);
    // Opened on the newest message, the composer on screen, nothing scrolled by hand.
    const view = await page.evaluate(() => {
      const items = document.querySelectorAll('ol.thread li[data-key]');
      const last = items[items.length - 1].getBoundingClientRect();
      const composer = document.querySelector('#composer').getBoundingClientRect();
      const card = document.querySelector('section.composer').getBoundingClientRect();
      return { lastTop: last.top, lastBottom: last.bottom, composerTop: composer.top, composerBottom: composer.bottom, cardTop: card.top, height: window.innerHeight, scrolled: window.scrollY };
    });
    assert.ok(view.scrolled > 0, `${width} px: the page opened scrolled to the end (${JSON.stringify(view)})`);
    assert.ok(view.composerTop >= 0 && view.composerBottom <= view.height, `${width} px: the composer is on screen (${JSON.stringify(view)})`);
    assert.ok(view.lastBottom <= view.cardTop + 1 && view.lastTop >= 0, `${width} px: the newest message is on screen above the composer (${JSON.stringify(view)})`);
    await noOverflow(`long thread at ${width} px`);
    await axe(page, `long thread at ${width} px`);
    await page.screenshot({ path: `${shots}/20-long-thread-${width}.png` });

    // Assign to a teammate from the "Assign to" picker (fits the width), then to nobody.
    await page.selectOption('form.assign select[name="to"]', { label: teammate });
    await page.click('form.assign button[type="submit"]');
    await page.getByText('Assignment changed.').waitFor();
    await page.locator('p.status', { hasText: `Assigned to: ${teammate}.` }).waitFor();
    assert.equal(await page.locator('form.assign select[name="to"] option:checked').textContent(), teammate);
    await noOverflow(`assigned at ${width} px`);
    await axe(page, `assigned to a teammate at ${width} px`);
    await page.screenshot({ path: `${shots}/22-assigned-${width}.png` });
    await page.selectOption('form.assign select[name="to"]', 'nobody');
    await page.click('form.assign button[type="submit"]');
    await page.locator('p.status', { hasText: 'Assigned to: nobody.' }).waitFor();

    // Priority and a label typed by the agent: on the page, in the list, filterable there.
    const tag = `vip-${width}`;
    await page.selectOption('form.priority select[name="priority"]', 'urgent');
    await page.click('form.priority button[type="submit"]');
    await page.getByText('Priority set.').waitFor();
    await page.fill('form.add-label input[name="add"]', `VIP ${width}`);
    await page.click('form.add-label button[type="submit"]');
    await page.locator('div.labels span.label', { hasText: tag }).waitFor();
    await noOverflow(`labels at ${width} px`);
    await axe(page, `priority and labels at ${width} px`);
    await page.screenshot({ path: `${shots}/23-labels-${width}.png` });
    await page.goto(`${base}/app?view=all`);
    const row = page.locator('ul.conversations li', { hasText: waId });
    await row.locator('.priority.urgent').waitFor();
    await row.locator('a.label', { hasText: tag }).click();
    await page.waitForURL(new RegExp(`label=${tag}$`));
    assert.equal(await page.locator('ul.conversations li').count(), 1, 'only the labelled conversation');
    await page.locator('p.filter', { hasText: tag }).waitFor();
    await noOverflow(`label filter at ${width} px`);
    await axe(page, `list filtered by label at ${width} px`);
    await page.screenshot({ path: `${shots}/24-label-filter-${width}.png` });
    await page.goto(`${base}/app/c/${id}`);
    await page.click(`form.label button[aria-label="Remove label ${tag}"]`);
    await page.getByText('Labels changed.').waitFor();
    assert.equal(await page.locator('div.labels span.label', { hasText: tag }).count(), 0, 'the label is gone');
    await page.goto(`${base}/app/c/${id}`);
    await page.locator('a.earlier').waitFor();

    // "Earlier messages" loads the pages before, in place, until the first message.
    let loaded = first;
    let clicks = 0;
    while (await page.locator('a.earlier').count()) {
      const before = loaded.length;
      await page.click('a.earlier');
      await page.waitForFunction((n) => document.querySelectorAll('ol.thread li[data-key]').length > n, before);
      loaded = await entries();
      inOrderOnce(loaded, `${width} px after ${clicks + 1} earlier page(s)`);
      assert.ok(loaded.length - before <= PAGE, 'at most a page at a time');
      clicks += 1;
      assert.ok(clicks < 10, 'the pages end');
    }
    assert.ok(clicks >= 2, `${width} px: ${clicks} earlier pages`);
    await page.getByText('history line 000.').waitFor();
    await noOverflow(`whole thread at ${width} px`);
    await axe(page, `whole thread at ${width} px`);
    await page.screenshot({ path: `${shots}/21-long-thread-all-${width}.png` });
    total = loaded.length;

    // A message arriving live joins the end; the loaded pages stay.
    await webhook(waId, `wamid.thread-live-${width}-${Date.now()}`, `live message at ${width}`);
    await page.locator('ol.thread li.customer', { hasText: `live message at ${width}` }).waitFor({ timeout: 5000 });
    const after = await entries();
    inOrderOnce(after, `${width} px after a live message`);
    assert.ok(after.length >= total + 1, `${width} px: ${after.length} entries after the live message, ${total} before`);
    assert.equal(after[0].key, loaded[0].key, 'the first message is still there');
  }

  // Without script, "Earlier messages" is a plain link to the page before, with a way back.
  const plain = await context.newPage();
  await plain.route('**/app/static/app.js', (r) => r.abort());
  await plain.setViewportSize({ width: 390, height: 844 });
  await plain.goto(`${base}/app/c/${id}`);
  // The sticky composer is on screen even without script.
  const composerOnScreen = await plain.evaluate(() => {
    const r = document.querySelector('#composer').getBoundingClientRect();
    return r.top >= 0 && r.bottom <= window.innerHeight;
  });
  assert.ok(composerOnScreen, 'without script the composer is on screen too');
  await plain.click('a.earlier');
  await plain.waitForURL(/\?before=\d+$/);
  assert.ok((await plain.locator('ol.thread li[data-key]').count()) <= PAGE);
  await plain.click('text=Newest messages');
  await plain.waitForURL(new RegExp(`/app/c/${id}$`));
  await plain.close();
} catch (e) {
  problems.push(e.stack || String(e));
  if (page) await page.screenshot({ path: `${shots}/failure-thread.png`, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('browser: long thread flow passed');
