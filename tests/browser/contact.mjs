// The contact panel, erasing a contact and the keyboard moves between conversations, in a
// real browser (Debian chromium, playwright-core) at 1280 and 390 px. Started by
// tests/it/browser.rs with three conversations (one from a customer with a hostile name):
//   FD_BASE, FD_EMAIL, FD_PASSWORD (an admin), FD_AGENT, FD_AGENT_PASSWORD, FD_SHOTS,
//   FD_VICTIM (the conversation to erase), FD_VICTIM_WA_ID
// The inbox: each tab counts its unread conversations; j/k (and Alt+↓/↑) move the focus through the tab's conversations, Enter opens
// one; on a conversation j/k open the next/previous of that tab, never while typing in the
// reply; ? opens the shortcut help. The panel: open beside the header at 1280 px, collapsed
// (and opened by a tap) at 390 px, no horizontal overflow; the hostile name stays text. An
// agent sees no erase action. The admin erases the contact: a wrong confirmation is refused
// with the reason (on the erase step's own page), the right one leads to the inbox with a
// notice, the contact gone.
// axe-core finds nothing serious on each page.
import { chromium } from 'playwright-core';
import { shots, axe } from './common.mjs';
import assert from 'node:assert/strict';

const { FD_BASE: base, FD_EMAIL: email, FD_PASSWORD: password, FD_AGENT: agent, FD_AGENT_PASSWORD: agentPassword, FD_VICTIM: victim, FD_VICTIM_WA_ID: victimWaId } = process.env;

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-background-networking'] });
const problems = [];
let page = null;

async function signIn(context, who, pw) {
  const p = await context.newPage();
  p.on('dialog', (d) => { problems.push(`a script dialog opened: ${d.message()}`); d.dismiss(); });
  p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  p.on('console', (m) => { if (m.type() === 'error' && !/status of (404|422)/.test(m.text())) problems.push(`console error: ${m.text()}`); });
  await p.goto(`${base}/login`);
  await p.fill('input[name="email"]', who);
  await p.fill('input[name="password"]', pw);
  await p.click('form[action="/login"] button[type="submit"]');
  await p.waitForURL(`${base}/app`);
  return p;
}

const noOverflow = async (what) => {
  const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(scroll <= width, `${what}: ${scroll} px wide content on a ${width} px screen`);
};
const focusedId = () => page.evaluate(() => {
  const a = document.activeElement;
  return a && a.matches('ul.conversations a.open') ? a.getAttribute('href').split('/').pop() : null;
});
const here = () => new URL(page.url()).pathname;

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await signIn(context, email, password);

  for (const [width, height] of [[1280, 900], [390, 844]]) {
    await page.setViewportSize({ width, height });
    // The inbox's "All" tab: j/k move through it.
    await page.goto(`${base}/app?view=all`);
    await page.locator('ul.conversations a.open').first().waitFor();
    const ids = await page.evaluate(() => [...document.querySelectorAll('ul.conversations a.open')].map((a) => a.getAttribute('href').split('/').pop()));
    assert.ok(ids.length >= 3, `three conversations listed: ${ids}`);
    if (width === 1280) {
      // Nothing opened yet: the tab counts all three as unread (labelled for screen readers).
      assert.equal(await page.textContent('nav.tabs a[href^="/app?view=all"] .count'), '3 unread');
      await page.screenshot({ path: `${shots}/contact-1280-inbox-unread.png` });
      await axe(page, '1280 px inbox with unread counts');
    }
    await page.keyboard.press('j');
    assert.equal(await focusedId(), ids[0], `${width} px: j focuses the first conversation`);
    await page.keyboard.press('j');
    assert.equal(await focusedId(), ids[1], `${width} px: j again, the second`);
    await page.keyboard.press('k');
    assert.equal(await focusedId(), ids[0], `${width} px: k, back to the first`);
    await page.keyboard.press('Alt+ArrowDown');
    assert.equal(await focusedId(), ids[1], `${width} px: Alt+↓, the second`);
    assert.equal(await page.locator('ul.conversations li.current').count(), 1, 'the row moved to is marked');
    // Typing in the search box is not a shortcut.
    await page.focus('input[name="q"]');
    await page.keyboard.type('jk');
    assert.equal(await page.inputValue('input[name="q"]'), 'jk');
    assert.equal(await focusedId(), null, 'typing moved nothing');
    await page.fill('input[name="q"]', '');
    // Focus back on the second row; Enter opens it.
    await page.locator('ul.conversations a.open').nth(1).focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(`${base}/app/c/${ids[1]}`);
    await page.screenshot({ path: `${shots}/contact-${width}-inbox-keys.png` });

    // The contact panel: open on a wide screen, collapsed on a phone.
    const panel = page.locator('details.contact-panel');
    await panel.waitFor();
    const open = await panel.evaluate((d) => d.open);
    if (width >= 1000) {
      assert.ok(open, '1280 px: the panel is open');
    } else {
      assert.ok(!open, '390 px: the panel starts collapsed');
      await page.click('details.contact-panel > summary');
      assert.ok(await panel.evaluate((d) => d.open), '390 px: a tap opens it');
    }
    await page.locator('details.contact-panel .contact-number').waitFor({ state: 'visible' });
    assert.ok(await page.locator('details.contact-panel dd.first-seen time').isVisible(), 'first seen');
    assert.ok(await page.locator('details.contact-panel ul.contact-conversations li').count() >= 1, 'the conversations');
    assert.equal(await page.locator('details.erase').count(), 1, 'an admin gets the erase action');
    await noOverflow(`${width} px conversation with the panel open`);
    await page.screenshot({ path: `${shots}/contact-${width}-panel.png`, fullPage: true });
    await axe(page, `${width} px conversation with the contact panel`);

    // j/k from the conversation: the next and previous of the tab.
    await page.locator('h1').click();
    await page.keyboard.press('j');
    await page.waitForURL(`${base}/app/c/${ids[2]}`);
    await page.keyboard.press('k');
    await page.waitForURL(`${base}/app/c/${ids[1]}`);
    await page.keyboard.press('k');
    await page.waitForURL(`${base}/app/c/${ids[0]}`);
    // Before the first: said, not moved.
    await page.keyboard.press('k');
    await page.locator('p.nav-status', { hasText: 'No previous conversation in this tab.' }).waitFor();
    assert.equal(here(), `/app/c/${ids[0]}`);
    // Not while typing a reply.
    if (await page.locator('#composer').count()) {
      await page.focus('#composer');
      await page.keyboard.type('jk');
      assert.equal(await page.inputValue('#composer'), 'jk', 'j and k typed into the reply');
      await page.fill('#composer', '');
      await page.evaluate(() => window.localStorage.clear());
      assert.equal(here(), `/app/c/${ids[0]}`, 'typing moved nowhere');
    }
    // ? opens the shortcut help.
    await page.locator('h1').click();
    await page.keyboard.press('Shift+Slash');
    assert.ok(await page.locator('details#shortcuts').evaluate((d) => d.open), '? opens the help');
    assert.ok(await page.locator('details#shortcuts kbd', { hasText: 'j' }).first().isVisible());
    await page.screenshot({ path: `${shots}/contact-${width}-shortcuts.png` });
    await page.keyboard.press('Shift+Slash');
    assert.ok(!(await page.locator('details#shortcuts').evaluate((d) => d.open)), '? again hides it');
  }

  // An agent: the panel, no erase.
  const agentContext = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const admin = page;
  page = await signIn(agentContext, agent, agentPassword);
  await page.goto(`${base}/app/c/${victim}`);
  await page.locator('details.contact-panel').waitFor();
  assert.equal(await page.locator('details.erase').count(), 0, 'agents see no erase action');
  assert.equal(await page.locator(`form[action="/app/c/${victim}/erase"]`).count(), 0);
  await axe(page, '390 px conversation as an agent');
  await agentContext.close();
  page = admin;

  // The admin erases the hostile-named customer, at 390 px.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/app/c/${victim}`);
  const name = await page.locator('details.contact-panel .contact-name').textContent();
  assert.ok(name.includes('<img'), `the hostile name is shown as text: ${name}`);
  assert.equal(await page.locator('img[src="x"]').count(), 0, 'no injected image');
  await page.click('details.contact-panel > summary');
  await page.click('details.erase > summary');
  await page.fill('details.erase input[name="confirm"]', '123');
  await Promise.all([page.waitForNavigation(), page.click('details.erase button[type="submit"]')]);
  // Refused with the reason, on the erase step's own page (a reload shows it again).
  assert.equal(here(), `/app/c/${victim}/erase`);
  assert.ok((await page.textContent('p.problem[role="alert"]')).includes(`Nothing was erased: type ${victimWaId}`), 'a wrong confirmation is refused with the reason');
  assert.ok(await page.locator('details.erase').evaluate((d) => d.open), 'the erase form is open');
  await noOverflow('390 px erase step');
  await page.screenshot({ path: `${shots}/contact-390-erase-refused.png`, fullPage: true });
  await page.reload();
  assert.ok((await page.textContent('h1')).includes('<img'), 'the erase step again, the hostile name as text');
  await page.fill('details.erase input[name="confirm"]', victimWaId);
  await page.screenshot({ path: `${shots}/contact-390-erase-confirm.png`, fullPage: true });
  await axe(page, '390 px erase step');
  await Promise.all([page.waitForURL(`${base}/app?notice=erased`), page.click('details.erase button[type="submit"]')]);
  await page.locator('p.notice', { hasText: 'The contact was erased' }).waitFor();
  await page.goto(`${base}/app?view=all`);
  assert.equal(await page.locator(`ul.conversations a[href="/app/c/${victim}"]`).count(), 0, 'the erased conversation left the list');
  await page.goto(`${base}/app?notice=erased`);
  await noOverflow('390 px inbox after the erase');
  await page.screenshot({ path: `${shots}/contact-390-erased.png`, fullPage: true });
  await axe(page, '390 px inbox with the erase notice');
  const gone = await page.goto(`${base}/app/c/${victim}`);
  assert.equal(gone.status(), 404, 'the erased conversation is gone');

  assert.deepEqual(problems, [], 'no script dialogs, page errors or console errors');
  console.log('contact panel, erase and keyboard moves: ok at 1280 and 390 px');
} catch (e) {
  if (page) await page.screenshot({ path: `${shots}/contact-failure.png`, fullPage: true }).catch(() => {});
  throw e;
} finally {
  await browser.close();
}
