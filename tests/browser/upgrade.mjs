// Browser test of the agent fleet upgrade in the OMP web UI against a running server whose
// `[agent] binary` is a copy of omp stamped with a higher version.
//
//   OMP_URL=... OMP_ADMIN_PASSWORD=... OMP_EXPECT_HOST=hostname OMP_OFFERED_VERSION=0.2.0
//   OMP_VIEWER_USER=name OMP_VIEWER_PASSWORD=... OMP_SERVED_BINARY=<the server's [agent] binary>
//   OMP_BROKEN_BINARY=file OMP_BROKEN_VERSION=its stamp OMP_UNSTAMPED_BINARY=file
//   [OMP_SCREENSHOT_DIR=dir] node upgrade.mjs
//
// As the admin: opens Hosts, sees OMP_EXPECT_HOST online and its agent tagged as behind (in
// the table and on the host's page, which offers "Upgrade agent"), opens "Upgrade agents" (the offered version, one host behind; the dialog in English and in
// Chinese), ticks the host, starts an upgrade with canary 1 and confirms, watches the run
// reach "succeeded" with the host upgraded as the canary, and sees the host's agent version
// become OMP_OFFERED_VERSION in the table; a second upgrade has nothing to do. Then it puts
// OMP_BROKEN_BINARY (stamped OMP_BROKEN_VERSION, does not run as an agent) at
// OMP_SERVED_BINARY: the run fails with the agent's reason and the host keeps its version; and
// OMP_UNSTAMPED_BINARY while the dialog is open: the server's 409 is shown in the dialog, and
// the dialog opened again says the binary is unusable. As the viewer
// (no hosts:upgrade): no "Upgrade agents" button, no row selection, no Agent upgrades tab.
// Saves upgrade-hosts-before.png, upgrade-dialog.png, upgrade-dialog-zh.png, upgrade-run.png,
// upgrade-run-zh.png, upgrade-hosts.png, upgrade-run-failed.png and upgrade-refused.png. Prints `browser upgrade: N passed, K failed`.
import { copyFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { expect, suite, tid } from './harness.mjs';

const HOST = process.env.OMP_EXPECT_HOST;
const OFFERED = process.env.OMP_OFFERED_VERSION;
const VIEWER = process.env.OMP_VIEWER_USER;
const VIEWER_PASSWORD = process.env.OMP_VIEWER_PASSWORD;
const SERVED = process.env.OMP_SERVED_BINARY;
const BROKEN = process.env.OMP_BROKEN_BINARY;
const BROKEN_VERSION = process.env.OMP_BROKEN_VERSION;
const UNSTAMPED = process.env.OMP_UNSTAMPED_BINARY;
const RUN_WAIT = 150_000;

const { BASE, USER, SHOTS, browser, page, step, signIn, finish } = await suite('upgrade', [
  'OMP_EXPECT_HOST',
  'OMP_OFFERED_VERSION',
  'OMP_VIEWER_USER',
  'OMP_VIEWER_PASSWORD',
  'OMP_SERVED_BINARY',
  'OMP_BROKEN_BINARY',
  'OMP_BROKEN_VERSION',
  'OMP_UNSTAMPED_BINARY',
]);

/** Puts `from` in place of the server's agent binary (whole, in one rename). */
function serve(from) {
  copyFileSync(from, SERVED + '.tmp');
  renameSync(SERVED + '.tmp', SERVED);
}

const row = (name) => tid(`host-row-${name}`);

async function shot(file) {
  await page.mouse.move(1430, 890);
  // let the tab ink bar and the dialog finish their animations
  await page.waitForTimeout(400);
  await page.screenshot({ path: join(SHOTS, file), fullPage: true });
}

/** Picks a language from the header menu, retried when the menu closed under the pointer. */
async function pickLanguage(code, hostsLabel) {
  for (let attempt = 1; ; attempt++) {
    await page.locator(tid('lang-switch')).click();
    const option = page.locator(tid(`lang-${code}`));
    await option.waitFor({ state: 'visible' });
    await option.click();
    try {
      await page.locator(tid('nav-hosts')).getByText(hostsLabel).waitFor({ state: 'visible', timeout: 5_000 });
      return;
    } catch (e) {
      if (attempt >= 3) throw e;
      await page.keyboard.press('Escape');
    }
  }
}

/** Opens the dialog and waits until it has the offered binary and the host counts. */
async function openDialog() {
  await page.locator(tid('hosts-upgrade')).click();
  await page.locator(tid('upgrade-dialog')).waitFor({ state: 'visible' });
  await page.locator(tid('upgrade-offered-version')).waitFor({ state: 'visible' });
  await page.locator(tid('upgrade-count-behind')).waitFor({ state: 'visible' });
}

async function closeDialog() {
  await page.locator(tid('upgrade-cancel')).click();
  await page.locator(tid('upgrade-dialog')).waitFor({ state: 'hidden' });
}

await step(`sign in as ${USER}`, signIn);

await step(`open Hosts and see ${HOST} online with an agent behind ${OFFERED}`, async () => {
  await page.locator(tid('nav-hosts')).click();
  await page.locator(tid('hosts-table')).waitFor({ state: 'visible' });
  // the table refreshes itself every 5 s
  await page.locator(`${row(HOST)} ${tid('host-status')}[data-status="online"]`).waitFor({ state: 'visible', timeout: 60_000 });
  const agent = page.locator(`${row(HOST)} ${tid('agent-version')}`);
  await agent.waitFor({ state: 'visible' });
  // the offered version arrives with its own request
  await page.locator(`${row(HOST)} ${tid('agent-version')}[data-standing="behind"]`).waitFor({ state: 'visible' });
  const v = await agent.getAttribute('data-version');
  expect(v && v !== OFFERED, `the agent already reports ${v}`);
  expect((await agent.innerText()).includes('behind'), 'the agent version has no "behind" tag');
  await shot('upgrade-hosts-before.png');
}, 65_000);

await step(`the page of ${HOST} shows its agent behind and "Upgrade agent"`, async () => {
  await page.locator(tid(`host-link-${HOST}`)).click();
  await page.locator(`${tid('host-inventory')} ${tid('agent-version')}[data-standing="behind"]`).waitFor({ state: 'visible' });
  await page.locator(tid('host-upgrade')).waitFor({ state: 'visible' });
  await page.locator(tid('host-back')).click();
  await page.locator(`${row(HOST)} ${tid('agent-version')}`).waitFor({ state: 'visible' });
});

await step('the dialog shows the offered binary and one host behind', async () => {
  await openDialog();
  const version = (await page.locator(tid('upgrade-offered-version')).innerText()).trim();
  expect(version === OFFERED, `offered version ${version}, expected ${OFFERED}`);
  const sha = (await page.locator(tid('upgrade-offered-sha')).innerText()).trim();
  expect(/^[0-9a-f]{64}$/.test(sha), `SHA-256 looks wrong: ${sha}`);
  const behind = await page.locator(tid('upgrade-count-behind')).getAttribute('data-value');
  expect(behind === '1', `${behind} hosts behind, expected 1`);
  const current = await page.locator(tid('upgrade-count-current')).getAttribute('data-value');
  expect(current === '0', `${current} hosts at the offered version, expected 0`);
  // nothing is ticked in the table yet: "all" is the scope, "selected" is not offered
  expect(await page.locator(tid('upgrade-scope-all')).isChecked(), 'scope "all" is not the default');
  expect(await page.locator(tid('upgrade-scope-selected')).isDisabled(), 'scope "selected" is enabled with nothing selected');
  await page.locator(tid('upgrade-explain')).getByText('stops the run').waitFor({ state: 'visible' });
  await shot('upgrade-dialog.png');
  await closeDialog();
});

await step('the dialog in Chinese', async () => {
  await pickLanguage('zh-CN', '主机');
  await openDialog();
  await page.locator(tid('upgrade-dialog')).getByText('本服务器提供的代理程序').waitFor({ state: 'visible' });
  await shot('upgrade-dialog-zh.png');
  await closeDialog();
  await pickLanguage('en', 'Hosts');
});

let runId = '';
await step(`tick ${HOST}, upgrade it with canary 1 and confirm`, async () => {
  await page.locator(`${row(HOST)} .ant-checkbox-input`).check();
  await page.locator(tid('hosts-upgrade')).getByText('1 selected').waitFor({ state: 'visible' });
  await openDialog();
  expect(await page.locator(tid('upgrade-scope-selected')).isChecked(), 'the ticked host is not the scope');
  await page.locator(tid('upgrade-canary')).fill('1');
  await page.locator(tid('upgrade-timeout')).fill('120');
  const start = page.locator(tid('upgrade-start'));
  expect(await start.isEnabled(), 'the start button is disabled');
  await start.click();
  await page.locator(tid('upgrade-confirm-ok')).click();
  await page.locator(tid('upgrade-run')).waitFor({ state: 'visible' });
  expect(new URL(page.url()).pathname === '/hosts/upgrades', `the page is ${page.url()}`);
  runId = new URL(page.url()).searchParams.get('run') ?? '';
  expect(runId, 'no run id in the address');
});

await step('the run reaches succeeded with the host upgraded as the canary', async () => {
  await page.locator(`${tid('upgrade-run')}[data-state="succeeded"]`).waitFor({ state: 'visible', timeout: RUN_WAIT });
  const hostRow = page.locator(tid(`upgrade-host-row-${HOST}`));
  const state = await hostRow.locator(tid('upgrade-host-state')).getAttribute('data-state');
  expect(state === 'succeeded', `the host's state is ${state}`);
  await hostRow.locator(tid('upgrade-host-canary')).waitFor({ state: 'visible' });
  const versions = await hostRow.locator(tid('upgrade-host-versions')).innerText();
  expect(versions.includes(OFFERED), `from → to reads ${versions}`);
  // the run list shows the finished run
  await page.locator(`${tid(`upgrade-run-row-${runId}`)} ${tid('upgrade-run-state')}[data-state="succeeded"]`).waitFor({ state: 'visible' });
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot('upgrade-run.png');
}, RUN_WAIT);

await step('the run view in Chinese', async () => {
  await pickLanguage('zh-CN', '主机');
  await page.locator(tid('upgrade-run')).getByText('已升级').first().waitFor({ state: 'visible' });
  await shot('upgrade-run-zh.png');
  await pickLanguage('en', 'Hosts');
});

await step(`the hosts table shows ${HOST} at ${OFFERED}`, async () => {
  await page.locator(tid('tab-hosts')).click();
  await page.locator(tid('hosts-table')).waitFor({ state: 'visible' });
  await page
    .locator(`${row(HOST)} ${tid('agent-version')}[data-version="${OFFERED}"][data-standing="current"]`)
    .waitFor({ state: 'visible', timeout: 60_000 });
  await page.locator(`${row(HOST)} ${tid('host-status')}[data-status="online"]`).waitFor({ state: 'visible' });
  await shot('upgrade-hosts.png');
  await page.locator(tid(`host-link-${HOST}`)).click();
  await page.locator(`${tid('host-inventory')} ${tid('agent-version')}[data-standing="current"]`).waitFor({ state: 'visible' });
  expect((await page.locator(tid('host-upgrade')).count()) === 0, '"Upgrade agent" is offered for an agent at the offered version');
  await page.locator(tid('host-back')).click();
}, 65_000);

await step('a second upgrade has nothing to do', async () => {
  await openDialog();
  await page.locator(`${tid('upgrade-count-current')}[data-value="1"]`).waitFor({ state: 'visible' });
  expect(await page.locator(tid('upgrade-start')).isDisabled(), 'the start button is enabled with nothing to upgrade');
  await page.locator(tid('upgrade-will')).getByText('Nothing to upgrade').waitFor({ state: 'visible' });
  await closeDialog();
});

await step(`a binary that does not run as an agent: the run fails, ${HOST} keeps ${OFFERED}`, async () => {
  serve(BROKEN);
  await openDialog();
  const version = (await page.locator(tid('upgrade-offered-version')).innerText()).trim();
  expect(version === BROKEN_VERSION, `offered version ${version}, expected ${BROKEN_VERSION}`);
  await page.locator(`${tid('upgrade-count-behind')}[data-value="1"]`).waitFor({ state: 'visible' });
  await page.locator(tid('upgrade-timeout')).fill('30');
  await page.locator(tid('upgrade-start')).click();
  await page.locator(tid('upgrade-confirm-ok')).click();
  await page.locator(`${tid('upgrade-run')}[data-state="failed"]`).waitFor({ state: 'visible', timeout: 60_000 });
  const hostRow = page.locator(tid(`upgrade-host-row-${HOST}`));
  const state = await hostRow.locator(tid('upgrade-host-state')).getAttribute('data-state');
  expect(state === 'failed', `the host's state is ${state}`);
  const msg = await hostRow.locator(tid('upgrade-host-message')).innerText();
  expect(msg.includes('abandoned'), `the host's message is ${JSON.stringify(msg)}`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot('upgrade-run-failed.png');
  await page.locator(tid('tab-hosts')).click();
  await page.locator(`${row(HOST)} ${tid('agent-version')}[data-version="${OFFERED}"][data-standing="behind"]`).waitFor({ state: 'visible' });
}, 65_000);

await step("the server's refusal is shown in the dialog", async () => {
  await openDialog();
  // the binary becomes unusable while the dialog is open: POST /hosts/upgrade answers 409
  serve(UNSTAMPED);
  await page.locator(tid('upgrade-start')).click();
  await page.locator(tid('upgrade-confirm-ok')).click();
  const error = page.locator(tid('upgrade-error'));
  await error.waitFor({ state: 'visible' });
  const text = await error.innerText();
  expect(text.includes('version stamp') && text.includes('HTTP 409'), `the error reads ${JSON.stringify(text)}`);
  expect(await page.locator(tid('upgrade-dialog')).isVisible(), 'the dialog closed');
  await shot('upgrade-refused.png');
  await closeDialog();
  // opened again, the dialog says at once that there is nothing to offer
  await page.locator(tid('hosts-upgrade')).click();
  const unusable = page.locator(tid('upgrade-binary-error'));
  await unusable.waitFor({ state: 'visible' });
  expect((await unusable.innerText()).includes('version stamp'), 'the unusable binary is not explained');
  expect(await page.locator(tid('upgrade-start')).isDisabled(), 'the start button is enabled without a binary');
  await closeDialog();
});

await step(`as ${VIEWER} (no hosts:upgrade) there is no upgrade action`, async () => {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'en-US' });
  const p = await ctx.newPage();
  try {
    await p.goto(BASE + '/', { waitUntil: 'domcontentloaded' });
    await p.locator(tid('login-username')).fill(VIEWER);
    await p.locator(tid('login-password')).fill(VIEWER_PASSWORD);
    await p.locator(tid('login-submit')).click();
    await p.locator(tid('dashboard')).waitFor({ state: 'visible' });
    await p.locator(tid('nav-hosts')).click();
    await p.locator(`${row(HOST)} ${tid('agent-version')}`).waitFor({ state: 'visible' });
    await p.locator(tid('tab-ssh')).waitFor({ state: 'visible' });
    expect((await p.locator(tid('hosts-upgrade')).count()) === 0, 'the viewer sees "Upgrade agents"');
    expect((await p.locator(tid('tab-upgrades')).count()) === 0, 'the viewer sees the Agent upgrades tab');
    expect((await p.locator(`${row(HOST)} .ant-checkbox-input`).count()) === 0, 'the viewer can tick hosts');
    await p.goto(BASE + '/hosts/upgrades', { waitUntil: 'domcontentloaded' });
    await p.getByText('Permission required').waitFor({ state: 'visible' });
    expect((await p.locator(tid('upgrade-runs')).count()) === 0, 'the viewer sees the runs');
  } finally {
    await ctx.close();
  }
});

await finish();
