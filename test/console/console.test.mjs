// End-to-end tests of the staff console in real headless Chromium against
// the real binary on configs/demo.yaml (make console-test).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, center, browser, enterPIN, sleep, waitFor } from './harness.mjs';

let d, c, b, page;
const card = (pb) => `article[data-playbook="${pb}"]`;

before(async () => {
  d = await startDaemon();
  c = await center(d);
  b = await browser();
  page = b.page;
  // A frozen page clock, so that before/after comparisons see the same time.
  await page.clock.setFixedTime(new Date('2026-12-01T10:00:00+08:00'));
  await page.goto(d.base + '/console/');
  await page.waitForSelector('#idle:not([hidden])');
});

after(async () => {
  if (b) await b.close();
  if (c) await c.close();
  if (d) await d.stop();
  if (b) {
    assert.deepEqual(b.errors, [], 'page errors');
    assert.deepEqual(b.offsite, [], 'requests off the daemon');
  }
});

test('staff trigger §4.7 illness and mark a step with a PIN: the MQTT report names them', async () => {
  await page.click('#btn-raise');
  await page.click('.choice[data-playbook="illness"]');
  await enterPIN(page, 'Teller 1', '1234');
  await page.waitForSelector(card('illness'));
  await c.wait('the raised report', (m) => m.topic === 'hallguard/demo-hall/alerts/illness' && m.json.event === 'raised' && m.json.source === 'Chen Jing');

  await page.click(`${card('illness')} .step[data-step="help_call_120"]`);
  await enterPIN(page, 'Teller 1', '1234');
  await page.waitForSelector(`${card('illness')} .step.done[data-step="help_call_120"]`);
  // The hall screen shows the staff member's label, never the name.
  assert.match(await page.textContent(`${card('illness')} .step[data-step="help_call_120"]`), /Teller 1/);
  const m = await c.wait('the step report', (m) => m.topic === 'hallguard/demo-hall/alerts/illness' && m.json.event === 'step');
  const st = m.json.steps.find((s) => s.id === 'help_call_120');
  assert.equal(st.done, true);
  assert.equal(st.by, 'Chen Jing');
  assert.equal(m.json.measures.at(-1).by, 'Chen Jing');
  assert.equal(m.json.measures.at(-1).section, '§4.7 1');
  // The steps show their § references, in Chinese, with English a tap away.
  assert.match(await page.textContent(card('illness')), /§4\.7 2.*120/);
  await page.click('#btn-lang');
  assert.match(await page.textContent(card('illness')), /call 120/);
  await page.click('#btn-lang');
});

test('a wrong PIN is refused and counted', async () => {
  await page.click(`${card('illness')} .step[data-step="serious_call_120"]`);
  await enterPIN(page, 'Teller 2', '0000');
  await waitFor('the refusal', async () => (await page.textContent('#pin-error')) === 'PIN错误或当前无法执行');
  await page.click('#m-close');
  assert.equal(await page.locator(`${card('illness')} .step.done[data-step="serious_call_120"]`).count(), 0);
  assert.equal(await d.metric('hallguard_console_pin_failures_total'), 1);
  assert.ok(!c.msgs.some((m) => m.json && m.json.event === 'step' && m.json.steps.find((s) => s.id === 'serious_call_120' && s.done)));
});

test('a panic press leaves the console exactly as it was, while the robbery reaches MQTT', async () => {
  await sleep(1000);
  const dom1 = await page.evaluate(() => document.documentElement.outerHTML);
  const shot1 = await page.screenshot();
  const state1 = await d.state();

  d.sim('press', 'panic-teller-1');
  const r = await c.wait('the robbery report', (m) => m.topic === 'hallguard/demo-hall/alerts/robbery' && m.json.event === 'raised');
  assert.equal(r.json.silent, true);
  await sleep(1500); // six SSE polls
  const dom2 = await page.evaluate(() => document.documentElement.outerHTML);
  const shot2 = await page.screenshot();
  const state2 = await d.state();
  d.sim('release', 'panic-teller-1');

  assert.equal(state2, state1, 'the state sent to the page changed');
  assert.equal(dom2, dom1, 'the DOM changed');
  assert.ok(shot1.equals(shot2), 'the screenshot changed');
  assert.doesNotMatch(dom2, /robbery|抢劫|§4\.3/);
});

test('the duress PIN does the action, sends the silent duress report, and shows nothing else', async () => {
  const cards = await page.locator('article').count();
  await page.click(`${card('illness')} .step[data-step="notify_family"]`);
  await enterPIN(page, 'Teller 2', '9999');
  await page.waitForSelector(`${card('illness')} .step.done[data-step="notify_family"]`);
  assert.match(await page.textContent(`${card('illness')} .step[data-step="notify_family"]`), /Teller 2/);
  const dr = await c.wait('the duress report', (m) => m.topic === 'hallguard/demo-hall/alerts/duress' && m.json.event === 'raised');
  assert.equal(dr.json.silent, true);
  assert.equal(dr.json.source, 'Liu Yang');
  assert.equal(dr.json.section, '§4.3');
  await c.wait('the step by Liu Yang', (m) => m.topic === 'hallguard/demo-hall/alerts/illness' && m.json.event === 'step' &&
    m.json.steps.some((s) => s.id === 'notify_family' && s.by === 'Liu Yang'));
  await sleep(1000);
  assert.equal(await page.locator('article').count(), cards);
  assert.equal(await page.isHidden('#modal'), true);
  const dom = await page.evaluate(() => document.documentElement.outerHTML);
  assert.doesNotMatch(dom, /duress|胁迫|robbery|抢劫|§4\.3/);
  assert.doesNotMatch(await d.state(), /duress|robbery/);
});

test('after a daemon restart the page reconnects and shows the new state', async () => {
  const token1 = await page.getAttribute('meta[name="console-token"]', 'content');
  await d.stop();
  await c.close();
  d = await startDaemon(d);
  c = await center(d);
  await waitFor('the page to reload', async () => {
    try { return (await page.getAttribute('meta[name="console-token"]', 'content')) !== token1; } catch { return false; }
  }, 20000);
  await page.waitForSelector('#broker.up');
  const st = JSON.parse(await d.state());
  await waitFor('the page to match the state', async () => (await page.locator('article').count()) === st.incidents.length);
});

test('a drill (§1.3) is started and stopped from the console', async () => {
  // Incidents open before the restart were restored (a robbery latches
  // until the center resolves it); a drill starts only with none open.
  await d.resolveAll();
  await waitFor('the console to show no incident', async () => JSON.parse(await d.state()).incidents.length === 0);
  const st = JSON.parse(await d.state());
  assert.equal(st.incidents.length, 0, 'no incident open after the restart (a drill needs none)');
  await page.click('#btn-drill');
  await page.click('.choice[data-playbook="illness"]');
  await page.fill('.field[name="participants"]', 'Chen Jing, Liu Yang');
  await enterPIN(page, 'Teller 1', '1234');
  await page.waitForSelector(`${card('illness')}.drill`);
  await c.wait('the drill report', (m) => m.topic === 'hallguard/demo-hall/drills/alerts/illness' && m.json.drill === true && m.json.event === 'raised');
  await page.click('#btn-drill');
  await enterPIN(page, 'Teller 2', '5678');
  await page.waitForSelector('#idle:not([hidden])');
  const rec = await c.wait('the drill record', (m) => m.topic.startsWith('hallguard/demo-hall/drills/') && m.json.outcome === 'completed');
  assert.deepEqual(rec.json.participants, ['Chen Jing', 'Liu Yang']);
  assert.equal(rec.json.started_by, 'Chen Jing');
  assert.equal(rec.json.ended_by, 'Liu Yang');
});
