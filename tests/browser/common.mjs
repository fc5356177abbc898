// Shared by the browser flows (inbox.mjs, simulator.mjs): the screenshot directory and
// the axe-core accessibility check.
import { mkdirSync, readFileSync } from 'node:fs';
import assert from 'node:assert/strict';

/** Where screenshots go (FD_SHOTS, created if missing); printed for the test's output. */
export const shots = process.env.FD_SHOTS || 'target/browser-screenshots';
mkdirSync(shots, { recursive: true });
console.log(`screenshots: ${shots}`);

/** axe-core, run in the page (through the DevTools protocol, so the page's CSP stays on). */
const axeSource = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');

/** Fails on any serious or critical accessibility violation axe-core finds on the page. */
export async function axe(page, what) {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`));
  assert.deepEqual(violations, [], `axe on ${what}`);
}
