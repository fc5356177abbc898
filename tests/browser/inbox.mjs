// The inbox in a real browser (Debian chromium, headless, driven by playwright-core).
// Started by tests/it/browser.rs against a real server with a fake Graph API; it gets
// the server's address, a login and the webhook secret in the environment:
//   FD_BASE, FD_EMAIL, FD_PASSWORD, FD_SECRET, FD_SHOTS (screenshot directory)
// Steps: log in by keyboard alone on a 375 px wide screen (and later reply by keyboard); a handoff from a customer with
// a hostile name arrives live (no reload) and is shown inert; the agent opens it, replies
// and sees it delivered; attaches a photo; hands it back; flips the kill switch and sees the next customer
// get the static reply; uploads a document and finds it by search; sends a template in
// a conversation whose 24-hour window closed; opens the dashboard. Fails (exit 1) on any error, script dialog or
// horizontal overflow.
import { chromium } from 'playwright-core';
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import assert from 'node:assert/strict';

const { FD_BASE: base, FD_EMAIL: email, FD_PASSWORD: password, FD_SECRET: secret } = process.env;
const shots = process.env.FD_SHOTS || 'target/browser-screenshots';
mkdirSync(shots, { recursive: true });

/** Posts a signed text webhook, as Meta would. */
async function webhook(from, wamid, name, text) {
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: 'WABA', changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: '15550001111', phone_number_id: 'P1' },
      contacts: [{ profile: { name }, wa_id: from }],
      messages: [{ from, id: wamid, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }],
    } }] }],
  });
  const sig = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
  const r = await fetch(`${base}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig }, body });
  assert.equal(r.status, 200, 'webhook accepted');
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking'],
});
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 375, height: 800 } });
  const page = await context.newPage();
  page.on('dialog', (d) => { problems.push(`a script dialog opened: ${d.message()}`); d.dismiss(); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  const noOverflow = async (what) => {
    const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scroll <= width, `${what}: ${scroll} px wide content on a ${width} px screen`);
  };

  // Log in with the keyboard alone.
  await page.goto(`${base}/app`);
  assert.match(page.url(), /\/login\?next=\/app$/);
  // The email field has autofocus.
  await page.waitForFunction(() => document.activeElement && document.activeElement.getAttribute('name') === 'email');
  await page.keyboard.type(email);
  await page.keyboard.press('Tab');
  await page.keyboard.type(password);
  await page.keyboard.press('Enter');
  await page.waitForURL(`${base}/app`);
  await noOverflow('inbox');
  await page.screenshot({ path: `${shots}/1-inbox-empty.png`, fullPage: true });

  // A handoff arrives while the inbox is open: it appears without a reload.
  const hostile = '<img src=x onerror=alert(1)>';
  const started = Date.now();
  await webhook('31699900001', `wamid.browser-${started}`, hostile, 'I want to talk to a human <script>alert(2)</script> <svg onload=alert(3)></svg> <a href="javascript:alert(4)">x</a> <b onmouseover=alert(5)>hi</b>');
  await page.locator('ul.conversations li', { hasText: 'I want to talk to a human' }).waitFor({ timeout: 5000 });
  const liveMs = Date.now() - started;
  console.log(`handoff visible in the open inbox ${liveMs} ms after the webhook was acknowledged`);
  assert.ok(liveMs <= 1500, `live update took ${liveMs} ms`);
  assert.equal(await page.locator('img[src="x"]').count(), 0, 'no injected image');
  assert.equal(await page.locator('main svg, main b, main script, a[href^="javascript:"]').count(), 0, 'no injected markup');
  assert.ok((await page.textContent('ul.conversations')).includes(hostile), 'the hostile name is shown as text');
  await noOverflow('inbox with a conversation');
  await page.screenshot({ path: `${shots}/2-inbox-handoff.png`, fullPage: true });

  // Open it, reply, see it delivered.
  await page.locator('ul.conversations li', { hasText: 'I want to talk to a human' }).locator('a.open').click();
  await page.waitForURL(/\/app\/c\/\d+$/);
  await page.getByText('Why it was handed over').waitFor();
  assert.equal(await page.locator('ol.thread svg, ol.thread b, ol.thread script, ol.thread img, a[href^="javascript:"]').count(), 0, 'the thread shows the payloads as text');
  assert.ok((await page.textContent('ol.thread')).includes('<svg onload=alert(3)>'));
  await page.fill('textarea[name="text"]', 'Hi, this is Sam from the shop. How can I help?');
  await page.click('form[action$="/reply"] button[type="submit"]');
  await page.getByText('Sent. The ticks show').waitFor();
  await page.locator('li.agent .tick', { hasText: /delivered|read/ }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('img[src="x"]').count(), 0);
  await noOverflow('conversation');
  await page.screenshot({ path: `${shots}/3-conversation-replied.png`, fullPage: true });

  // Keyboard alone: Tab reaches the composer, then its Send button; Enter sends.
  let reached = false;
  for (let i = 0; i < 60 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement && document.activeElement.id === 'composer');
  }
  assert.ok(reached, 'Tab reaches the composer');
  await page.keyboard.type('Typed and sent with the keyboard');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Send');
  await page.keyboard.press('Enter');
  await page.locator('li.agent', { hasText: 'Typed and sent with the keyboard' }).waitFor();

  // Attach a photo in the composer: it goes out as an image with its caption.
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64, 7)]);
  await page.setInputFiles('form.attach input[type="file"]', { name: 'new-wheel.png', mimeType: 'image/png', buffer: png });
  await page.fill('form.attach input[name="caption"]', 'Your new wheel is ready');
  await page.click('form.attach button[type="submit"]');
  await page.getByText('Sent. The ticks show').waitFor();
  await page.locator('li.agent', { hasText: 'Your new wheel is ready' }).waitFor();
  await noOverflow('conversation with an attachment');
  await page.screenshot({ path: `${shots}/3b-photo-attached.png`, fullPage: true });

  // Hand back to the bot with a note.
  await page.fill('input[name="note"]', 'Customer is fine now');
  await page.click('form[action$="/handback"] button[type="submit"]');
  await page.getByText('The bot is handling this conversation.').waitFor();
  await page.getByText('Note: Customer is fine now').waitFor();
  await page.screenshot({ path: `${shots}/4-handed-back.png`, fullPage: true });

  // Flip the kill switch: the next customer gets the static reply, and a person owns it.
  await page.click('a[href="/admin/settings"]');
  await page.click('form.kill button[type="submit"]');
  await page.locator('form.kill', { hasText: 'Kill switch is ON' }).waitFor();
  await noOverflow('settings');
  await page.screenshot({ path: `${shots}/5-kill-switch-on.png`, fullPage: true });
  await webhook('31699900002', `wamid.browser-kill-${Date.now()}`, 'Kim', 'are you open on sunday?');
  await page.goto(`${base}/app?view=human`);
  await page.locator('ul.conversations li', { hasText: 'Kim' }).locator('a.open').click();
  await page.locator('li.bot', { hasText: 'Our assistant is offline' }).waitFor({ timeout: 5000 });
  await page.screenshot({ path: `${shots}/6-static-reply.png`, fullPage: true });

  // Upload a document and find it by search.
  await page.click('a[href="/admin/kb"]');
  await page.setInputFiles('input[type="file"]', { name: 'gift-cards.md', mimeType: 'text/markdown', buffer: Buffer.from('# Gift cards\n\nGift cards are valid for two years and can be used for repairs too.') });
  await page.click('form[enctype="multipart/form-data"] button[type="submit"]');
  await page.getByText('1 added, 0 updated').waitFor();
  await page.fill('input[name="q"]', 'how long can I use a gift card');
  await page.keyboard.press('Enter');
  await page.locator('ol.hits li', { hasText: 'valid for two years' }).first().waitFor();
  await noOverflow('knowledge base');
  await page.screenshot({ path: `${shots}/7-knowledge-search.png`, fullPage: true });

  // A conversation whose 24-hour window closed: no composer, a template picker instead.
  await page.goto(`${base}/app/c/${process.env.FD_CLOSED_CONVERSATION}`);
  await page.getByText('The 24-hour window is closed').waitFor();
  assert.equal(await page.locator('textarea#composer').count(), 0, 'no free-text composer');
  await page.selectOption('select[name="template"]', 'order_update|en_US');
  await page.fill('textarea[name="params"]', 'SS-10421');
  await page.click('form[action$="/template"] button[type="submit"]');
  await page.getByText('Sent. The ticks show').waitFor();
  await page.screenshot({ path: `${shots}/8-template-sent.png`, fullPage: true });

  // The dashboard's charts render at phone width.
  await page.click('a[href="/admin/dashboard"]');
  await page.locator('figure.chart svg').first().waitFor();
  assert.equal(await page.locator('figure.chart').count(), 4);
  await noOverflow('dashboard');
  await page.screenshot({ path: `${shots}/9-dashboard.png`, fullPage: true });
} catch (e) {
  problems.push(e.stack || String(e));
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('browser: inbox flow passed');
