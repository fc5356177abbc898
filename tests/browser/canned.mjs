// Canned replies kept in the admin UI, the search that jumps to a message, and handoff
// notifications on the inbox list, in a real browser (Debian chromium, playwright-core)
// at 1280 and 390 px. Started by tests/it/browser.rs with an admin, an agent and a
// handed-off conversation of 300+ entries:
//   FD_BASE, FD_EMAIL, FD_PASSWORD, FD_AGENT, FD_AGENT_PASSWORD, FD_SECRET, FD_SHOTS,
//   FD_CONVERSATION
// Per width: the admin adds a canned reply on /admin/canned; the agent, in another
// browser, types "/" in the conversation's empty composer, picks it and sends it (the
// test checks it reached the Graph API once); the agent searches the list for an old
// message, clicks the result and lands on that message in the long thread (on screen,
// outlined); on the inbox list, with notifications allowed and the sound switched on, a
// new handoff makes a browser notification and the chime. axe-core finds nothing serious;
// no horizontal overflow.
import { chromium } from 'playwright-core';
import { createHmac } from 'node:crypto';
import { shots, axe } from './common.mjs';
import assert from 'node:assert/strict';

const env = process.env;
const base = env.FD_BASE;
const id = env.FD_CONVERSATION;

/** Posts a signed text webhook, as Meta would. */
async function webhook(from, wamid, text) {
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: 'WABA', changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: '15550001111', phone_number_id: 'P1' },
      contacts: [{ profile: { name: 'Notify Me' }, wa_id: from }],
      messages: [{ from, id: wamid, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }],
    } }] }],
  });
  const sig = 'sha256=' + createHmac('sha256', env.FD_SECRET).update(body).digest('hex');
  const r = await fetch(`${base}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig }, body });
  assert.equal(r.status, 200, 'webhook accepted');
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--autoplay-policy=no-user-gesture-required'],
});
const problems = [];
let current = null;

/** A signed-in page in its own context (notifications allowed; Notification and the
 *  chime's oscillator observed). */
async function signIn(email, password) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, permissions: ['notifications'] });
  await context.addInitScript(() => {
    window.__notes = [];
    window.__chimes = 0;
    const Real = window.Notification;
    function Observed(title, options) { window.__notes.push({ title, body: options && options.body, tag: options && options.tag }); }
    Observed.prototype.close = function () {};
    Object.defineProperty(Observed, 'permission', { get: () => (Real ? Real.permission : 'denied') });
    Observed.requestPermission = () => (Real ? Real.requestPermission() : Promise.resolve('denied'));
    window.Notification = Observed;
    const start = OscillatorNode.prototype.start;
    OscillatorNode.prototype.start = function (...args) { window.__chimes += 1; return start.apply(this, args); };
  });
  const page = await context.newPage();
  page.on('dialog', (d) => { problems.push(`a script dialog opened: ${d.message()}`); d.dismiss(); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // (The refused form below answers 422 on purpose; the browser logs that load.)
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().includes('status of 422')) problems.push(`console error: ${m.text()}`); });
  await page.goto(`${base}/login`);
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', password);
  await page.click('form[action="/login"] button[type="submit"]');
  await page.waitForURL(`${base}/app`);
  return page;
}

async function noOverflow(page, what) {
  const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(scroll <= width, `${what}: ${scroll} px wide content on a ${width} px screen`);
}

try {
  const admin = await signIn(env.FD_EMAIL, env.FD_PASSWORD);
  const agent = await signIn(env.FD_AGENT, env.FD_AGENT_PASSWORD);
  for (const [width, height] of [[1280, 900], [390, 844]]) {
    // The admin adds a canned reply.
    current = admin;
    await admin.setViewportSize({ width, height });
    await admin.goto(`${base}/admin/canned`);
    const title = `Pickup ${width}`;
    const text = `Your bike is ready for pickup, see you soon! (${width})`;
    await admin.fill('form.canned-new input[name="title"]', title);
    await admin.fill('form.canned-new textarea[name="text"]', text);
    await admin.click('form.canned-new button[type="submit"]');
    await admin.getByText('Canned reply added.').waitFor();
    await admin.locator('ul.canned-list li form.canned-edit input[name="title"]').first().waitFor();
    const titles = await admin.locator('form.canned-edit input[name="title"]').evaluateAll((els) => els.map((e) => e.value));
    assert.ok(titles.includes(title), `the list has ${title}: ${titles}`);
    // A title over 60 characters is refused in words, the typing kept.
    await admin.fill('form.canned-new input[name="title"]', 'x');
    await admin.evaluate(() => { document.querySelector('form.canned-new input[name="title"]').removeAttribute('maxlength'); });
    await admin.fill('form.canned-new input[name="title"]', 'y'.repeat(61));
    await admin.fill('form.canned-new textarea[name="text"]', 'kept');
    await admin.click('form.canned-new button[type="submit"]');
    await admin.locator('p.problem[role="alert"]', { hasText: 'at most 60' }).waitFor();
    assert.equal(await admin.inputValue('form.canned-new textarea[name="text"]'), 'kept');
    await noOverflow(admin, `canned replies page at ${width} px`);
    await axe(admin, `canned replies page at ${width} px`);
    await admin.screenshot({ path: `${shots}/30-canned-admin-${width}.png`, fullPage: true });

    // The agent picks it with "/" in the empty composer and sends it.
    current = agent;
    await agent.setViewportSize({ width, height });
    await agent.goto(`${base}/app/c/${id}`);
    await agent.focus('#composer');
    await agent.keyboard.press('/');
    const picker = agent.locator('ul.canned-picker[role="listbox"]');
    await picker.waitFor();
    const option = picker.locator('[role="option"]', { hasText: title });
    await option.waitFor();
    await noOverflow(agent, `canned picker at ${width} px`);
    await axe(agent, `canned picker at ${width} px`);
    await agent.screenshot({ path: `${shots}/31-canned-picked-${width}.png` });
    await option.dispatchEvent('mousedown');
    assert.equal(await agent.inputValue('#composer'), text);
    await agent.keyboard.press('Control+Enter');
    await agent.waitForURL(/notice=sent/);

    // Search: an old message of the long thread, found from the list, opened in place.
    await agent.goto(`${base}/app`);
    await agent.fill('form.search input[name="q"]', '040');
    await agent.click('form.search button[type="submit"]');
    const hit = agent.locator('div.last.found a.hit');
    await hit.first().waitFor();
    assert.equal(await hit.locator('mark').first().textContent(), '040');
    await agent.locator('p.filter', { hasText: 'Results from all tabs' }).waitFor();
    await noOverflow(agent, `search results at ${width} px`);
    await axe(agent, `search results at ${width} px`);
    await agent.screenshot({ path: `${shots}/32-search-results-${width}.png` });
    await hit.first().click();
    await agent.waitForURL(/\?m=\d+#m\d+$/);
    const wanted = new URL(agent.url()).hash.slice(1);
    const target = agent.locator(`li#${wanted}`);
    await target.waitFor();
    assert.match(await target.textContent(), /history line 040\./);
    const landed = await agent.evaluate((key) => {
      const li = document.getElementById(key);
      const r = li.getBoundingClientRect();
      const card = document.querySelector('section.composer').getBoundingClientRect();
      return { top: r.top, bottom: r.bottom, cardTop: card.top, animation: getComputedStyle(li).animationName, found: li.classList.contains('found') };
    }, wanted);
    assert.ok(landed.found && landed.animation === 'found', `outlined: ${JSON.stringify(landed)}`);
    assert.ok(landed.top >= 0 && landed.bottom <= landed.cardTop, `on screen above the composer: ${JSON.stringify(landed)}`);
    await noOverflow(agent, `found message at ${width} px`);
    await agent.screenshot({ path: `${shots}/33-search-jump-${width}.png` });

    // Notifications on the list page: allowed, the sound on; a new handoff arrives.
    await agent.goto(`${base}/app`);
    await agent.waitForFunction(() => document.body.hasAttribute('data-updated'));
    const sound = agent.locator('#notify-sound');
    if ((await sound.getAttribute('aria-pressed')) !== 'true') await sound.click();
    assert.equal(await sound.getAttribute('aria-pressed'), 'true');
    assert.equal(await agent.evaluate(() => localStorage.getItem('frontdesk:notify-sound')), 'on');
    const [notes, chimes] = await agent.evaluate(() => [window.__notes.length, window.__chimes]);
    const from = `3169990${width === 1280 ? '1280' : '0390'}`;
    await webhook(from, `wamid.notify-${width}-${Date.now()}`, 'can I talk to a human please');
    await agent.waitForFunction((n) => window.__notes.length > n, notes, { timeout: 5000 });
    const note = await agent.evaluate(() => window.__notes[window.__notes.length - 1]);
    assert.equal(note.title, 'A customer needs a person');
    assert.ok(await agent.evaluate((c) => window.__chimes > c, chimes), 'the chime played');
    await agent.locator('ul.conversations li', { hasText: from }).waitFor();
    await noOverflow(agent, `list with the sound switch at ${width} px`);
    await axe(agent, `list with the sound switch at ${width} px`);
    await agent.screenshot({ path: `${shots}/34-notified-${width}.png` });
    // The switch is kept in this browser, and turns off.
    await agent.reload();
    assert.equal(await agent.locator('#notify-sound').getAttribute('aria-pressed'), 'true');
    await agent.locator('#notify-sound').click();
    assert.equal(await agent.evaluate(() => localStorage.getItem('frontdesk:notify-sound')), null);
  }
} catch (e) {
  problems.push(e.stack || String(e));
  if (current) await current.screenshot({ path: `${shots}/failure-canned.png`, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('browser: canned replies, search and notifications flow passed');
