// Browser test of SSH push, CSV import and known host keys (Hosts module) against a running
// server and a reachable sshd.
//
//   OMP_URL=http://127.0.0.1:45678 OMP_ADMIN_PASSWORD=... [OMP_ADMIN_USER=admin]
//   OMP_SSH_PORT=2222 OMP_SSH_KEY_FILE=/path/to/id_ed25519 OMP_SSH_PREFIX=/tmp/x/opt
//   OMP_SSH_DATA_DIR=/tmp/x/data [OMP_SSH_ADDRESS=127.0.0.1] [OMP_SSH_USER=root]
//   [OMP_SCREENSHOT_DIR=dir] [CHROMIUM_PATH=/usr/bin/chromium] node ssh.mjs
//
// Signs in as the admin, opens Hosts → Add host → "Over SSH", fills address, port, user root,
// the private key (read from OMP_SSH_KEY_FILE), install and data folders, submits and waits up
// to 120 s for the push to succeed (ssh-push.png); checks the key was cleared from the form.
// Then "Import CSV": validates two rows, one with a hostile address, and expects the per-row
// error on that row and Import disabled (import.png). Last, the "SSH push" tab of Hosts: the
// push is in Recent pushes (its steps in a drawer) and the host key in Known host keys, which
// is then forgotten (ssh-keys.png). The agent the push started keeps running: the caller stops
// it (pkill -f "$OMP_SSH_PREFIX/bin/omp"). Stops at the first failed step; prints
// `browser ssh: N passed, K failed`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, suite, tid, VIEWPORT } from './harness.mjs';

const SSH_ADDRESS = process.env.OMP_SSH_ADDRESS || '127.0.0.1';
const SSH_PORT = process.env.OMP_SSH_PORT ?? '';
const SSH_USER = process.env.OMP_SSH_USER || 'root';
const SSH_KEY_FILE = process.env.OMP_SSH_KEY_FILE ?? '';
const SSH_PREFIX = process.env.OMP_SSH_PREFIX ?? '';
const SSH_DATA_DIR = process.env.OMP_SSH_DATA_DIR ?? '';
const PUSH_WAIT = 120_000;

let KEY;
try {
  KEY = readFileSync(SSH_KEY_FILE, 'utf8');
} catch (e) {
  console.error(`browser ssh: cannot read OMP_SSH_KEY_FILE: ${e}`);
  console.log('browser ssh: 0 passed, 1 failed');
  process.exit(1);
}

const { USER, SHOTS, page, pageErrors, step, signIn, finish } = await suite('ssh', ['OMP_SSH_PORT', 'OMP_SSH_KEY_FILE', 'OMP_SSH_PREFIX', 'OMP_SSH_DATA_DIR']);
// no credential may ever travel in a URL
const leakyUrls = [];
const keyLine = KEY.split('\n').find((l) => l.length > 20 && !l.startsWith('-----')) ?? '\u0000';
page.on('request', (r) => {
  const u = decodeURIComponent(r.url());
  if (u.includes(keyLine) || u.includes('sekret-Pa55')) leakyUrls.push(r.url());
});

/** The dialog can be taller than the window: grow the window for the picture. */
async function shot(file) {
  await page.mouse.move(1430, 890);
  const h = await page.evaluate(() => {
    const m = document.querySelector('.ant-modal');
    const r = m ? m.getBoundingClientRect() : null;
    return Math.max(document.documentElement.scrollHeight, r ? r.bottom + 140 : 0);
  });
  await page.setViewportSize({ width: VIEWPORT.width, height: Math.min(4000, Math.max(VIEWPORT.height, Math.ceil(h))) });
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(SHOTS, file), fullPage: true });
  await page.setViewportSize(VIEWPORT);
}

const target = `${SSH_ADDRESS}:${SSH_PORT}`;

await step(`sign in as ${USER}`, signIn);

await step('open Hosts → Add host → Over SSH', async () => {
  await page.locator(tid('nav-hosts')).click();
  await page.locator(tid('hosts-table')).waitFor({ state: 'visible' });
  await page.locator(tid('hosts-add')).click();
  await page.locator(tid('ssh-tab')).click();
  await page.locator(tid('ssh-address')).waitFor({ state: 'visible' });
});

await step(`push over SSH to ${SSH_USER}@${target} with a key`, async () => {
  await page.locator(tid('ssh-address')).fill(SSH_ADDRESS);
  await page.locator(tid('ssh-port')).fill(String(SSH_PORT));
  await page.locator(tid('ssh-user')).fill(SSH_USER);
  await page.locator(tid('ssh-auth-key')).click();
  await page.locator(tid('ssh-key')).fill(KEY);
  expect((await page.locator(tid('ssh-password')).count()) === 0, 'the password field is still shown in key mode');
  await page.locator(tid('ssh-prefix')).fill(SSH_PREFIX);
  await page.locator(tid('ssh-data-dir')).fill(SSH_DATA_DIR);
  await page.locator(tid('ssh-submit')).click();
  await page.locator(tid('push-steps')).waitFor({ state: 'visible' });
  const n = await page.locator(`${tid('push-steps')} [data-testid^="push-step-"]`).count();
  expect(n === 8, `the push shows ${n} steps, not 8`);
});

await step(
  'the push succeeds (push-state ok)',
  async () => {
    const end = page.locator(`${tid('push-state')}[data-state="ok"], ${tid('push-state')}[data-state="failed"]`);
    await end.first().waitFor({ state: 'visible', timeout: PUSH_WAIT });
    const state = await page.locator(tid('push-state')).getAttribute('data-state');
    if (state !== 'ok') {
      const why = await page.locator(tid('push-failure')).innerText().catch(() => '?');
      throw new Error(`the push failed: ${why.replace(/\s+/g, ' ')}`);
    }
    const states = await page.locator(`${tid('push-steps')} [data-testid^="push-step-"]`).evaluateAll((els) => els.map((e) => e.getAttribute('data-state')));
    expect(states.every((s) => s === 'ok'), `not every step is ok: ${states.join(', ')}`);
    await page.locator(tid('push-host-link')).waitFor({ state: 'visible' });
    console.log(`     ${(await page.locator(tid('push-host-link')).innerText()).trim()}, host key ${(await page.locator(tid('push-host-key')).innerText()).trim()}`);
  },
  PUSH_WAIT,
);

await step('screenshot the push (ssh-push.png)', () => shot('ssh-push.png'));

await step('the key was cleared from the form', async () => {
  await page.locator(tid('ssh-again')).click();
  await page.locator(tid('ssh-key')).waitFor({ state: 'visible' });
  const v = await page.locator(tid('ssh-key')).inputValue();
  expect(v === '', `the private key is still in the form (${v.length} characters)`);
  expect((await page.locator(tid('ssh-address')).inputValue()) === SSH_ADDRESS, 'the address was not kept for the next push');
});

await step('Import CSV: validate two rows, one with a bad address', async () => {
  await page.locator(tid('import-tab')).click();
  const csv = [
    'address,port,user,password,labels,groups,prefix,data_dir,expected_host_key',
    '# a comment line',
    `${SSH_ADDRESS},${SSH_PORT},${SSH_USER},sekret-Pa55,env=test,web,${SSH_PREFIX},${SSH_DATA_DIR},`,
    `-oProxyCommand=x,22,root,sekret-Pa55,,,,,`,
  ].join('\n');
  await page.locator(tid('import-csv')).fill(csv);
  expect(await page.locator(tid('import-run')).isDisabled(), 'Import is enabled before validating');
  await page.locator(tid('import-validate')).click();
  const rows = page.locator(`${tid('import-rows')} tr[data-testid^="import-row-"]`);
  await rows.nth(1).waitFor({ state: 'visible' });
  expect((await rows.count()) === 2, `the validation lists ${await rows.count()} rows, not 2`);
  const good = rows.filter({ hasText: SSH_ADDRESS });
  const bad = rows.filter({ hasText: '-oProxyCommand=x' });
  expect((await good.getAttribute('data-ok')) === 'true', 'the good row is not valid');
  expect((await bad.getAttribute('data-ok')) === 'false', 'the row with -oProxyCommand=x is not flagged');
  const errors = (await bad.locator('[data-testid^="import-row-errors-"]').innerText()).replace(/\s+/g, ' ');
  expect(/address/i.test(errors), `the bad row's errors do not name the address: ${errors}`);
  console.log(`     bad row: ${errors}`);
  expect(await page.locator(tid('import-run')).isDisabled(), 'Import is enabled although a row is invalid');
});

await step('screenshot the import (import.png)', () => shot('import.png'));

await step('close the dialog', async () => {
  await page.locator(tid('enroll-close')).click();
  await page.locator(tid('enroll-close')).waitFor({ state: 'hidden' });
});

await step('SSH push tab: the push in Recent pushes with its steps', async () => {
  await page.locator(tid('tab-ssh')).click();
  const row = page.locator(`${tid('pushes-table')} tr[data-testid^="push-row-"]`).filter({ hasText: target }).first();
  await row.waitFor({ state: 'visible' });
  expect((await row.locator(tid('push-row-state')).getAttribute('data-state')) === 'ok', 'the push is not ok in Recent pushes');
  await row.locator('[data-testid^="push-open-"]').click();
  const drawer = page.locator('.ant-drawer-body');
  await drawer.locator(`${tid('push-state')}[data-state="ok"]`).waitFor({ state: 'visible' });
  expect((await drawer.locator('[data-testid^="push-step-"]').count()) === 8, 'the drawer does not show 8 steps');
  await page.locator('.ant-drawer .ant-drawer-close').click();
  await drawer.waitFor({ state: 'hidden' });
});

await step(`Known host keys lists ${target}`, async () => {
  const row = page.locator(`${tid('known-hosts-table')} ${tid(`known-host-row-${target}`)}`);
  await row.waitFor({ state: 'visible' });
  expect((await row.innerText()).includes('SHA256:'), 'no SHA256 fingerprint in the row');
});

await step('screenshot the SSH push tab (ssh-keys.png)', () => shot('ssh-keys.png'));

await step(`forget the host key of ${target}`, async () => {
  await page.locator(tid(`known-host-forget-${target}`)).click();
  await page.locator(`.ant-popover ${tid('confirm-ok')}`).click();
  await page.locator(tid(`known-host-row-${target}`)).waitFor({ state: 'detached' });
});

await step('no credential in any URL, no script error', async () => {
  expect(!leakyUrls.length, `a credential went into a URL: ${leakyUrls[0]}`);
  // an API answer with an error status (e.g. 422 for the invalid row) is logged by Chromium too
  const errs = pageErrors.filter((e) => !e.includes('Failed to load resource'));
  expect(!errs.length, `browser errors: ${errs.slice(-3).join(' | ')}`);
});

await finish();
