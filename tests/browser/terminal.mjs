// Browser test of the web terminal and its replay against a running server.
//
//   OMP_URL=http://127.0.0.1:45678 OMP_ADMIN_PASSWORD=... OMP_EXPECT_HOST=<an online hostname>
//   [OMP_ADMIN_USER=admin] [OMP_HOST_WAIT_SECS=90] [OMP_SCREENSHOT_DIR=dir]
//   [CHROMIUM_PATH=/usr/bin/chromium] node terminal.mjs
//
// Signs in as the admin, opens the host OMP_EXPECT_HOST from the Hosts table, clicks
// Terminal, waits for "connected", types `echo omp-$((40+2))` and waits for `omp-42` on the
// screen (xterm's DOM renderer: the rows are text in `.xterm-rows`). Reloads the page and
// checks that it reattaches to the same session (same id, connected, `omp-42` repainted).
// Then Audit log → Terminal sessions → Replay of that session, waits for `omp-42` in the
// replay screen; checks the Replay link of the terminals.open audit record; finally closes the
// terminal and sees it ended. Saves terminal.png and replay.png. Stops at the first failed
// step; prints `browser terminal: N passed, K failed`.
import { join } from 'node:path';
import { expect, STEP_TIMEOUT, suite, tid } from './harness.mjs';

const EXPECT_HOST = process.env.OMP_EXPECT_HOST ?? '';
const HOST_WAIT = Number(process.env.OMP_HOST_WAIT_SECS || 90) * 1000;


const { USER, SHOTS, page, step, signIn, finish } = await suite('terminal', ['OMP_EXPECT_HOST']);

await step(`sign in as ${USER}`, signIn);


/** The text xterm shows in the element with this data-testid (DOM renderer rows). */
function screenText(testid) {
  return page.evaluate((id) => {
    const el = document.querySelector(`[data-testid="${id}"] .xterm-rows`);
    return el ? el.textContent.replace(/\u00a0/g, ' ') : '';
  }, testid);
}

async function waitForScreen(testid, needle, timeout = STEP_TIMEOUT) {
  try {
    await page.waitForFunction(
      ([id, text]) => {
        const el = document.querySelector(`[data-testid="${id}"] .xterm-rows`);
        return !!el && el.textContent.replace(/\u00a0/g, ' ').includes(text);
      },
      [testid, needle],
      { timeout, polling: 100 },
    );
  } catch {
    const text = (await screenText(testid)).replace(/\s+/g, ' ').trim();
    throw new Error(`"${needle}" did not show in ${testid}; it shows: ${JSON.stringify(text.slice(-300))}`);
  }
}

const status = (state) => `${tid('terminal-status')}[data-state="${state}"]`;
let termId = '';
let terminalUrl = '';

await step(`open ${EXPECT_HOST} from the hosts table`, async () => {
  await page.locator(tid('nav-hosts')).click();
  await page.locator(tid('hosts-table')).waitFor({ state: 'visible' });
  const online = page.locator(`${tid(`host-row-${EXPECT_HOST}`)} ${tid('host-status')}[data-status="online"]`);
  await online.waitFor({ state: 'visible', timeout: HOST_WAIT });
  await page.locator(tid(`host-details-${EXPECT_HOST}`)).click();
  await page.locator(tid('host-detail')).waitFor({ state: 'visible' });
}, HOST_WAIT);

await step('click Terminal and get connected', async () => {
  await page.locator(tid('terminal-open')).click();
  await page.locator(tid('terminal-screen')).waitFor({ state: 'visible' });
  await page.locator(status('connected')).waitFor({ state: 'visible' });
  termId = (await page.locator(tid('terminal-id')).getAttribute('data-id')) ?? '';
  expect(/^\d+$/.test(termId), `no terminal id shown (${JSON.stringify(termId)})`);
  terminalUrl = page.url();
  expect(/\/hosts\/[^/]+\/terminal$/.test(new URL(terminalUrl).pathname), `the terminal page is at ${terminalUrl}`);
  console.log(`     terminal session ${termId} at ${new URL(terminalUrl).pathname}`);
});

await step('type echo omp-$((40+2)) and see omp-42', async () => {
  // wait for the shell's first output (the prompt) so the keystrokes are not lost in its startup
  await page.waitForFunction(
    () => (document.querySelector('[data-testid="terminal-screen"] .xterm-rows')?.textContent ?? '').trim().length > 0,
    undefined,
    { timeout: 15_000, polling: 100 },
  ).catch(() => undefined);
  await page.locator(tid('terminal-screen')).click();
  await page.keyboard.type('echo omp-$((40+2))');
  await page.keyboard.press('Enter');
  await waitForScreen('terminal-screen', 'omp-42');
});

await step('reload: reattaches to the same session and repaints omp-42', async () => {
  await page.reload({ waitUntil: 'domcontentloaded' });
  await page.locator(status('connected')).waitFor({ state: 'visible' });
  const id = await page.locator(tid('terminal-id')).getAttribute('data-id');
  expect(id === termId, `after the reload the page shows terminal ${id}, not ${termId} (a new session instead of a reattach)`);
  await waitForScreen('terminal-screen', 'omp-42', 15_000);
});

await step('screenshot the terminal', async () => {
  await page.mouse.move(1400, 880);
  await page.screenshot({ path: join(SHOTS, 'terminal.png') });
});

await step(`replay terminal ${termId} from Audit log → Terminal sessions`, async () => {
  await page.locator(tid('nav-audit')).click();
  await page.locator(tid('terminal-sessions-tab')).click();
  const replay = page.locator(tid(`terminal-replay-${termId}`));
  await replay.waitFor({ state: 'visible' });
  await replay.click();
  await page.locator(`${tid('replay-screen')} .xterm-rows`).waitFor({ state: 'visible' });
  await page.locator(tid('replay-speed-4')).click();
  await waitForScreen('replay-screen', 'omp-42', 60_000);
}, 60_000);

await step('screenshot the replay', async () => {
  await page.mouse.move(1400, 880);
  await page.screenshot({ path: join(SHOTS, 'replay.png') });
});

await step('the terminals.open audit record links to the replay', async () => {
  await page.locator(tid('replay-close')).click();
  await page.locator(tid('replay-modal')).waitFor({ state: 'hidden' });
  await page.locator(tid('audit-log-tab')).click();
  const row = page.locator(`${tid('audit-table')} tr[data-testid^="audit-row-"]`).filter({ hasText: 'terminals.open' }).filter({ hasText: `terminal ${termId} on` });
  await row.first().waitFor({ state: 'visible' });
  await row.first().locator('[data-testid^="audit-replay-"]').click();
  await waitForScreen('replay-screen', 'omp-42', 60_000);
  await page.locator(tid('replay-close')).click();
}, 60_000);

await step('close the terminal', async () => {
  await page.goto(terminalUrl, { waitUntil: 'domcontentloaded' }); // back to the terminal page: reattach
  await page.locator(tid('terminal-page')).waitFor({ state: 'visible' });
  await page.locator(status('connected')).waitFor({ state: 'visible' });
  const id = await page.locator(tid('terminal-id')).getAttribute('data-id');
  expect(id === termId, `coming back shows terminal ${id}, not ${termId}`);
  await page.locator(tid('terminal-close')).click();
  await page.locator(tid('confirm-ok')).click();
  await page.locator(status('ended')).waitFor({ state: 'visible' });
  await page.locator(tid('terminal-new')).waitFor({ state: 'visible' });
});

await finish();
