// The demo's WhatsApp simulator in a real browser (Debian chromium, headless, driven by
// playwright-core). Started by tests/it/browser.rs against a server in demo mode; it gets
// FD_BASE (the server) and FD_SHOTS (screenshot directory) in the environment.
// At 1280 px and at 390 px: a message of 4,097 Arabic letters is refused in the page with
// the reason and stays in the box; 4,096 (8,192 bytes) go; a refusal by the server (400)
// is shown and the text kept; bubbles read right to left; each chat log is reachable by
// keyboard; axe-core finds no serious or critical violation. Fails (exit 1) on any error,
// script dialog or horizontal overflow.
import { chromium } from 'playwright-core';
import { shots, axe } from './common.mjs';
import assert from 'node:assert/strict';

const base = process.env.FD_BASE;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking'],
});
const problems = [];
try {
  for (const width of [1280, 390]) {
    const context = await browser.newContext({ viewport: { width, height: 900 } });
    const page = await context.newPage();
    page.on('dialog', (d) => { problems.push(`a script dialog opened: ${d.message()}`); d.dismiss(); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await page.goto(`${base}/demo`);
    const phone = page.locator('section.phone').nth(width === 1280 ? 0 : 1);
    await phone.waitFor();
    const box = phone.locator('input[name="text"]');
    const send = phone.locator('form.compose button[type="submit"]');
    const problem = phone.locator('p.problem');

    // One letter over WhatsApp's limit: refused in the page, with why, and kept.
    const tooLong = 'م'.repeat(4097);
    await box.fill(tooLong);
    await send.click();
    await problem.filter({ hasText: '4097 characters long; WhatsApp allows at most 4096' }).waitFor();
    assert.equal(await box.inputValue(), tooLong, 'the text stays in the box');
    await page.screenshot({ path: `${shots}/sim-1-too-long-${width}.png`, fullPage: true });

    // The server's refusal (here a 400 made up for the test) is shown and the text kept.
    await page.route('**/demo/api/send', (route) => route.fulfill({ status: 400, contentType: 'application/json', body: JSON.stringify({ error: 'The server said no.' }) }));
    await box.fill('hello from a test');
    await send.click();
    await problem.filter({ hasText: 'The server said no.' }).waitFor();
    assert.equal(await box.inputValue(), 'hello from a test', 'the refused text is back in the box');
    await page.unroute('**/demo/api/send');

    // Exactly 4,096 characters (8,192 bytes): sent, and the bubble reads right to left.
    const longest = 'م'.repeat(4096);
    await box.fill(longest);
    await send.click();
    const bubble = phone.locator('.chat[role="log"] ol li.in').last();
    await bubble.waitFor({ timeout: 5000 });
    assert.ok(await problem.isHidden(), 'no error');
    assert.equal(await box.inputValue(), '', 'the box is cleared after a send');
    assert.equal(await bubble.getAttribute('dir'), 'auto');
    // The chat is redrawn as ticks arrive: look the bubble up afresh until it reads right to left.
    await page.waitForFunction((i) => {
      const li = [...document.querySelectorAll('section.phone')[i].querySelectorAll('.chat li.in')].pop();
      return li && getComputedStyle(li).direction === 'rtl';
    }, width === 1280 ? 0 : 1, { timeout: 5000 });
    assert.equal(await box.getAttribute('dir'), 'auto');

    // The chat logs are reachable by keyboard.
    let onLog = false;
    for (let i = 0; i < 20 && !onLog; i++) {
      await page.keyboard.press('Tab');
      onLog = await page.evaluate(() => document.activeElement && document.activeElement.matches('div.chat[role="log"][aria-label]'));
    }
    assert.ok(onLog, 'Tab reaches a chat log');
    const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scroll <= inner, `simulator at ${width} px: ${scroll} px wide content`);
    await axe(page, `simulator at ${width} px`);
    await page.screenshot({ path: `${shots}/sim-2-sent-${width}.png`, fullPage: true });
    await context.close();
  }
} catch (e) {
  problems.push(e.stack || String(e));
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('browser: simulator flow passed');
