// Screenshots of the console for the README (npm run screenshots):
// daemon/console/screenshots/console-{idle,fire,surge}.png at 1024×600.
import path from 'node:path';
import { ROOT, startDaemon, browser, enterPIN, sleep } from './harness.mjs';

const out = (name) => path.join(ROOT, 'daemon', 'console', 'screenshots', `console-${name}.png`);

async function shot(name, setup) {
  const d = await startDaemon();
  const b = await browser();
  try {
    await b.page.goto(d.base + '/console/');
    await b.page.waitForSelector('#broker.up');
    await setup(d, b.page);
    await sleep(600);
    await b.page.screenshot({ path: out(name) });
    console.log('wrote', out(name));
  } finally {
    await b.close();
    await d.stop();
  }
}

await shot('idle', async () => {});
await shot('fire', async (d, page) => {
  d.sim('press', 'callpoint-exit');
  await page.waitForSelector('article[data-playbook="fire"]');
  await page.click('article[data-playbook="fire"] .step[data-step]');
  await enterPIN(page, 'Teller 1', '1234');
  await page.waitForSelector('article[data-playbook="fire"] .step.done');
});
await shot('surge', async (d, page) => {
  for (let i = 0; i < 12; i++) d.sim('pulse', 'beam-entrance');
  await page.click('#btn-raise');
  await page.click('.choice[data-playbook="surge"]');
  await enterPIN(page, 'Teller 2', '5678');
  await page.waitForSelector('article[data-playbook="surge"]');
  await page.click('#btn-lang');
});
