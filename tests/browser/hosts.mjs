// Browser test of the Hosts pages of the OMP web UI against a running server.
//
//   OMP_URL=http://127.0.0.1:45678 OMP_ADMIN_PASSWORD=... [OMP_ADMIN_USER=admin]
//   [OMP_EXPECT_HOST=hostname] [OMP_HOST_WAIT_SECS=90] [OMP_RUN_ENROLL_COMMAND=1]
//   [OMP_SCREENSHOT_DIR=dir] [CHROMIUM_PATH=/usr/bin/chromium] node hosts.mjs
//
// Signs in as the admin, opens Hosts, clicks "Add host" and reads the enrollment command.
// With OMP_EXPECT_HOST (a host the caller enrolled) it waits until that host shows online in
// the table, opens Remote execution, runs argv `uname` `-s` on it and waits for `Linux` in the
// result. With OMP_RUN_ENROLL_COMMAND=1 it runs the one-line command it copied from the page
// itself (in the foreground mode of the installer; OMP_AGENT_PREFIX / OMP_AGENT_DATA_DIR
// from the environment say where), expects this machine's hostname to come online, and kills
// the agent at the end. Saves hosts.png and exec.png. Stops at the first failed step; prints
// `browser hosts: N passed, K failed`.
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { expect, suite, tid } from './harness.mjs';

const RUN_COMMAND = process.env.OMP_RUN_ENROLL_COMMAND === '1';
const EXPECT_HOST = process.env.OMP_EXPECT_HOST || (RUN_COMMAND ? hostname() : '');
let installer = null;
const stopInstaller = () => {
  if (installer && installer.exitCode === null) {
    try { process.kill(-installer.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
};
process.on('exit', stopInstaller);
const HOST_WAIT = Number(process.env.OMP_HOST_WAIT_SECS || 90) * 1000;


const { USER, SHOTS, page, step, signIn, finish } = await suite('hosts', []);

await step(`sign in as ${USER}`, signIn);

await step('open Hosts', async () => {
  await page.locator(tid('nav-hosts')).click();
  const outcome = await Promise.race([
    page.locator(tid('hosts-table')).waitFor({ state: 'visible' }).then(() => 'table'),
    page.locator(tid('unavailable-hosts')).waitFor({ state: 'visible' }).then(() => 'unavailable'),
  ]);
  expect(outcome === 'table', 'the Hosts page says the module is not available (GET /system/info reports hosts unavailable)');
});

await step('Add host shows an enrollment command', async () => {
  await page.locator(tid('hosts-add')).click();
  await page.locator(tid('enroll-create')).click();
  const cmd = page.locator(tid('enroll-command'));
  await cmd.waitFor({ state: 'visible' });
  const text = (await cmd.innerText()).trim();
  expect(text.length > 10, `the enrollment command looks empty: ${JSON.stringify(text)}`);
  console.log(`     enroll command: ${text.length > 140 ? text.slice(0, 140) + '…' : text}`);
  if (RUN_COMMAND) {
    // The command exactly as a user would paste it, run by a shell of its own.
    installer = spawn('sh', ['-c', text], {
      env: { ...process.env, OMP_AGENT_FOREGROUND: '1' },
      detached: true,
      stdio: 'ignore',
    });
  }
  await page.locator(tid('enroll-tab-tokens')).click();
  await page.locator(`${tid('enroll-tokens-table')} tr[data-testid^="enroll-token-row-"]`).first().waitFor({ state: 'visible' });
  await page.locator(tid('enroll-close')).click();
  await page.locator(tid('enroll-close')).waitFor({ state: 'hidden' });
});

if (EXPECT_HOST) {
  await step(
    `see ${EXPECT_HOST} online in the hosts table`,
    async () => {
      // the table refreshes itself every 5 s
      const online = page.locator(`${tid(`host-row-${EXPECT_HOST}`)} ${tid('host-status')}[data-status="online"]`);
      await online.waitFor({ state: 'visible', timeout: HOST_WAIT });
    },
    HOST_WAIT,
  );
}

await step('screenshot the hosts page', async () => {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.mouse.move(1400, 880);
  await page.screenshot({ path: join(SHOTS, 'hosts.png'), fullPage: true });
});

await step('open Remote execution', async () => {
  await page.locator(tid('tab-exec')).click();
  await page.locator(tid('exec-argv')).waitFor({ state: 'visible' });
  await page.locator(tid('exec-targets')).waitFor({ state: 'visible' });
});

if (EXPECT_HOST) {
  await step(`run uname -s on ${EXPECT_HOST}`, async () => {
    await page.locator(tid('exec-targets')).click();
    await page.keyboard.type(EXPECT_HOST);
    await page.locator(tid(`exec-target-option-${EXPECT_HOST}`)).click();
    await page.keyboard.press('Escape');
    await page.locator(tid('exec-argv')).fill('uname\n-s');
    await page.locator(tid('exec-run')).click();
    await page.locator(tid('exec-result')).waitFor({ state: 'visible' });
    await page.locator(tid(`exec-result-row-${EXPECT_HOST}`)).waitFor({ state: 'visible' });
  });

  await step(`see Linux in the result of ${EXPECT_HOST}`, async () => {
    const out = page.locator(`${tid(`exec-output-${EXPECT_HOST}`)} ${tid('exec-stdout')}`).filter({ hasText: 'Linux' });
    await out.waitFor({ state: 'visible', timeout: 60_000 });
    const state = await page.locator(`${tid(`exec-result-row-${EXPECT_HOST}`)} ${tid('job-host-state')}`).getAttribute('data-state');
    expect(state === 'ok', `the host's state is ${state}, not ok`);
    await page.locator(`${tid('exec-result')}[data-state="done"]`).waitFor({ state: 'visible' });
    // the finished job shows up in the history
    await page.locator(`${tid('exec-history')} tr[data-testid^="exec-history-row-"]`).first().waitFor({ state: 'visible' });
  }, 65_000);
}

await step('screenshot the remote execution page', async () => {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.mouse.move(1400, 880);
  await page.screenshot({ path: join(SHOTS, 'exec.png'), fullPage: true });
});

stopInstaller();
await finish();
