// Helpers for the console's end-to-end tests: the real binary on the demo
// config on free loopback ports, Debian's Chromium through playwright-core
// (no browser download), an MQTT client on the embedded broker.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import mqtt from 'mqtt';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'hallguard');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what, fn, timeout = 10000, every = 100) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(every);
  }
}

// startDaemon runs `hallguard run` on the demo config. Pass the ports and
// state dir of an earlier run to restart it in place.
export async function startDaemon(prev) {
  const dir = prev ? prev.dir : fs.mkdtempSync(path.join(os.tmpdir(), 'hallguard-console-'));
  const httpPort = prev ? prev.httpPort : await freePort();
  const localPort = prev ? prev.localPort : await freePort();
  const mqttPort = prev ? prev.mqttPort : await freePort();
  const log = fs.openSync(path.join(dir, 'daemon.log'), 'a');
  const proc = spawn(BIN, ['run', '-config', 'configs/demo.yaml', '-state-dir', path.join(dir, 'state'),
    '-http-listen', `127.0.0.1:${httpPort}`, '-local-listen', `127.0.0.1:${localPort}`, '-mqtt-listen', `127.0.0.1:${mqttPort}`],
  { cwd: ROOT, stdio: ['ignore', log, log] });
  const exited = new Promise((r) => proc.once('exit', r));
  const d = {
    // base is the local listener (console, /api/*); ops is http.listen
    // (/metrics, /healthz).
    dir, httpPort, localPort, mqttPort, proc, pid: proc.pid, base: `http://127.0.0.1:${localPort}`, ops: `http://127.0.0.1:${httpPort}`,
    logs: () => fs.readFileSync(path.join(dir, 'daemon.log'), 'utf8'),
    async stop() {
      if (proc.exitCode === null) process.kill(proc.pid, 'SIGTERM'); // by PID
      const t = setTimeout(() => { try { process.kill(proc.pid, 'SIGKILL'); } catch {} }, 10000);
      await exited;
      clearTimeout(t);
      fs.closeSync(log);
    },
    sim(...args) {
      return execFileSync(BIN, ['sim', '-socket', path.join(dir, 'state', 'sim.sock'), ...args], { cwd: ROOT }).toString();
    },
    async state() { return (await fetch(d.base + '/console/api/state')).text(); },
    // resolveAll resolves every open incident (silent ones included) with a
    // signed center command through `hallguard cmd`, as the center would.
    async resolveAll() {
      const incs = await (await fetch(d.base + '/api/incidents')).json();
      for (const inc of incs.filter((i) => i.state === 'active' || i.state === 'acknowledged')) {
        execFileSync(BIN, ['cmd', 'resolve', '-config', 'configs/demo.yaml', '-broker', `tcp://127.0.0.1:${mqttPort}`,
          '-incident', inc.id, '-by', 'center-op-7'], { cwd: ROOT });
      }
    },
    async metric(name) {
      const m = (await (await fetch(d.ops + '/metrics')).text()).match(new RegExp('^' + name + ' (\\S+)$', 'm'));
      return m ? Number(m[1]) : undefined;
    },
  };
  await waitFor('hallguard ready', async () => {
    if (proc.exitCode !== null) throw new Error('hallguard exited:\n' + d.logs());
    try { return (await (await fetch(d.ops + '/healthz')).json()).ready; } catch { return false; }
  }, 20000);
  return d;
}

// center subscribes to the hall's topics like the monitoring center.
export async function center(d) {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${d.mqttPort}`, { clientId: 'console-test-' + process.pid, reconnectPeriod: 500 });
  const msgs = [];
  c.on('message', (topic, payload) => {
    let json = null;
    try { json = JSON.parse(payload.toString()); } catch {}
    msgs.push({ topic, json });
  });
  await c.subscribeAsync('hallguard/demo-hall/#', { qos: 1 });
  return {
    msgs,
    wait(what, pred, timeout = 10000) { return waitFor(what, () => msgs.find((m) => m.json && pred(m)), timeout); },
    close() { return c.endAsync(true); },
  };
}

export async function browser() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hallguard-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic'],
    viewport: { width: 1024, height: 600 }, deviceScaleFactor: 1, locale: 'zh-CN', timezoneId: 'Asia/Shanghai',
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Only the daemon: no other network.
  const offsite = [];
  await ctx.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.hostname !== '127.0.0.1' && u.protocol !== 'data:') { offsite.push(u.href); return route.abort(); }
    return route.continue();
  });
  return { ctx, page, errors, offsite, async close() { await ctx.close(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

// enterPIN picks the staff member by the label the picker shows (the page
// never has names) and types the PIN on the pad.
export async function enterPIN(page, staff, pin) {
  await page.click(`.name[data-label="${staff}"]`);
  for (const k of pin) await page.click(`.key[data-key="${k}"]`);
  await page.click('.key[data-key="OK"]');
}
