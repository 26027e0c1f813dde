// Browser test of the Monitoring module's scrape targets page, the PromQL completion and the
// host page's Processes tab against a running server.
//
//   OMP_URL=http://127.0.0.1:45678 OMP_ADMIN_PASSWORD=... [OMP_ADMIN_USER=admin]
//   OMP_EXPECT_HOST=hostname [OMP_SCRAPE_WAIT_SECS=60]
//   [OMP_SCREENSHOT_DIR=dir] [CHROMIUM_PATH=/usr/bin/chromium] node monitoring.mjs
//
// OMP_EXPECT_HOST must be an online host whose agent sends metrics (e.g. the server's embedded
// agent). Signs in as the admin and, on Monitoring → Scrape targets:
//  - opens "Add target", types bad values (a job with a space, a target without a port, a timeout
//    over the interval, bad and reserved label names) and expects each field's message and no
//    request sent (target-form-errors.png);
//  - pastes the server's own /metrics URL (split into scheme, host:port and path), adds the target
//    (every 2 s) and waits until it is "down" with the server's "HTTP 401" as last error (the
//    server's /metrics needs a token), readable in full in the expanded row;
//  - creates an API token and edits the target to use it as bearer token (the drawer says stored
//    secrets are kept), then waits until it is "up" with samples; moves the scraping to the
//    host's agent (the target stays up; scrape-targets.png, and scrape-targets-zh.png and
//    scrape-target-edit-zh.png in Chinese); deletes it after confirmation;
//  - expects the remote-write card exactly when GET /api/v1/remote-write answers.
// In the explorer: `node_lo` offers node_load1 (↓/↑ move, Tab inserts), `{` offers the series'
// label names (Enter inserts instance=""), the value list offers the host (a click inserts it), Esc
// closes a list, and Enter runs the query (explorer-completion.png). On the host's Processes tab:
// rows of the test agent's processes, sorted by CPU and by memory (processes.png).
// Stops at the first failed step; prints `browser monitoring: N passed, K failed`.
import { join } from 'node:path';
import { expect, suite, tid } from './harness.mjs';

const EXPECT_HOST = process.env.OMP_EXPECT_HOST ?? '';
const SCRAPE_WAIT = Number(process.env.OMP_SCRAPE_WAIT_SECS || 60) * 1000;

const { BASE, USER, SHOTS, page, step, signIn, finish } = await suite('monitoring', ['OMP_EXPECT_HOST']);

const JOB = `omp-self-${Date.now().toString(36)}`;
const serverAddr = new URL(BASE).host;
const row = () => page.locator(`${tid('target-row')}[data-job="${JOB}"]`);

/** The requests the page sends to a path (method + path), to check that bad input sends none. */
const sent = [];
page.on('request', (r) => {
  const u = new URL(r.url());
  sent.push(`${r.method()} ${u.pathname}`);
});

/** Same-origin API call from the page (the session cookie and the CSRF token of /auth/me). */
async function apiCall(method, path, body) {
  return page.evaluate(
    async ({ method, path, body }) => {
      const me = await fetch('/api/v1/auth/me', { credentials: 'same-origin' }).then((r) => r.json());
      const r = await fetch('/api/v1' + path, {
        method,
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token ?? '' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: r.status, body: await r.text() };
    },
    { method, path, body },
  );
}

/** Clicks refresh until the target row's health is `want` (the page also refreshes every 15 s). */
async function waitHealth(want, timeout) {
  const until = Date.now() + timeout;
  for (;;) {
    const h = await row().locator(tid('target-health')).getAttribute('data-health').catch(() => null);
    if (h === want) return;
    if (Date.now() > until) {
      const err = await row().locator(tid('target-error')).innerText().catch(() => '');
      throw new Error(`after ${timeout / 1000} s the target is ${h} (last error: ${err || 'none'})`);
    }
    await page.waitForTimeout(1000);
    await page.locator(tid('targets-refresh')).click();
  }
}

/** The text of the explanation under a form field (by the field's test id). */
async function fieldError(testid) {
  const item = page.locator('.ant-form-item', { has: page.locator(tid(testid)) }).first();
  const err = item.locator('.ant-form-item-explain-error');
  await err.first().waitFor({ state: 'visible' });
  return (await err.allInnerTexts()).join(' | ');
}

/** Waits until an element stops moving (a drawer sliding in), for a clean screenshot. */
async function settled(locator) {
  let last = null;
  for (let i = 0; i < 50; i++) {
    const box = await locator.boundingBox();
    const key = box && `${Math.round(box.x)},${Math.round(box.y)},${Math.round(box.width)}`;
    if (key && key === last) return;
    last = key;
    await page.waitForTimeout(100);
  }
}

async function activeOption() {
  return page.locator(`${tid('promql-option')}[data-active="true"]`).getAttribute('data-value');
}

await step(`sign in as ${USER}`, signIn);

await step('open Monitoring → Scrape targets', async () => {
  await page.locator(tid('nav-monitoring')).click();
  await page.locator(tid('tab-targets')).click();
  await page.locator(tid('scrape-targets')).waitFor({ state: 'visible' });
  expect(new URL(page.url()).pathname === '/monitoring/targets', `the address is ${page.url()}`);
  await page.locator(tid('targets-table')).waitFor({ state: 'visible' });
});

await step('bad input in the form: every field says what is wrong, nothing is sent', async () => {
  await page.locator(tid('targets-add')).click();
  await page.locator(tid('target-drawer')).waitFor({ state: 'visible' });
  await page.locator(tid('target-job-input')).fill('omp self');
  await page.locator(tid('target-target-input')).fill('127.0.0.1');
  await page.locator(tid('target-interval')).fill('10');
  await page.locator(tid('target-timeout')).fill('20');
  await page.locator(tid('target-label-add')).click();
  await page.locator(tid('target-label-add')).click();
  await page.locator(tid('target-label-key')).nth(0).fill('1dc');
  await page.locator(tid('target-label-value')).nth(0).fill('east');
  await page.locator(tid('target-label-key')).nth(1).fill('__meta');
  await page.locator(tid('target-label-value')).nth(1).fill('x');
  await settled(page.locator('.ant-drawer-content-wrapper'));
  const before = sent.filter((s) => s === 'POST /api/v1/scrape-targets').length;
  await page.locator(tid('target-save')).click();
  const messages = {
    job: await fieldError('target-job-input'),
    target: await fieldError('target-target-input'),
    timeout: await fieldError('target-timeout'),
    label: await page.locator(`.ant-form-item:has(${tid('target-label-key')}) .ant-form-item-explain-error`).allInnerTexts(),
  };
  console.log(`     messages: ${JSON.stringify(messages)}`);
  expect(/letter/i.test(messages.job), `job: ${messages.job}`);
  expect(/port/i.test(messages.target), `target: ${messages.target}`);
  expect(/interval/i.test(messages.timeout), `timeout: ${messages.timeout}`);
  expect(messages.label.some((m) => /digit/.test(m)) && messages.label.some((m) => /reserved/.test(m)), `labels: ${messages.label}`);
  await page.mouse.move(1400, 20);
  await page.screenshot({ path: join(SHOTS, 'target-form-errors.png') });
  expect(sent.filter((s) => s === 'POST /api/v1/scrape-targets').length === before, 'the form sent a request with bad input');
});

await step("add the server's own /metrics (a pasted URL is split)", async () => {
  await page.locator(tid('target-job-input')).fill(JOB);
  await page.locator(tid('target-target-input')).fill(`${BASE}/metrics`);
  await page.locator(tid('target-target-input')).blur();
  const target = await page.locator(tid('target-target-input')).inputValue();
  const path = await page.locator(tid('target-path-input')).inputValue();
  expect(target === serverAddr && path === '/metrics', `the URL became target ${target}, path ${path}`);
  await page.locator(tid('target-interval')).fill('2');
  await page.locator(tid('target-timeout')).fill('1');
  await page.locator(tid('target-label-remove')).nth(1).click();
  await page.locator(tid('target-label-key')).nth(0).fill('suite');
  await page.locator(tid('target-label-value')).nth(0).fill('browser');
  await page.locator(tid('target-save')).click();
  await page.locator(tid('target-drawer')).waitFor({ state: 'hidden' });
  await row().waitFor({ state: 'visible' });
  const url = await row().locator(tid('target-url')).innerText();
  expect(url === `http://${serverAddr}/metrics`, `the row shows ${url}`);
  const labels = await row().innerText();
  expect(labels.includes('suite=browser'), `the row reads ${JSON.stringify(labels)}`);
});

await step('without a token the target is down and says why', async () => {
  await waitHealth('down', SCRAPE_WAIT);
  const err = await row().locator(tid('target-error')).innerText();
  expect(/401/.test(err), `last error: ${err}`);
  await row().locator('.ant-table-row-expand-icon').click();
  const full = await page.locator(tid('target-error-full')).first().innerText();
  expect(full.includes(`http://${serverAddr}/metrics`) && /401/.test(full), `full error: ${full}`);
  console.log(`     last error: ${full}`);
  await page.mouse.move(1400, 20);
  await page.screenshot({ path: join(SHOTS, 'scrape-target-down.png'), fullPage: true });
  await row().locator('.ant-table-row-expand-icon').click();
}, SCRAPE_WAIT);

let token = '';
await step('edit: a bearer token (an API token of the admin)', async () => {
  const made = await apiCall('POST', '/tokens', { name: `scrape ${JOB}` });
  expect(made.status === 201, `POST /tokens answered ${made.status}: ${made.body}`);
  token = JSON.parse(made.body).token;
  await row().locator(tid('target-edit')).click();
  await page.locator(tid('target-drawer')).waitFor({ state: 'visible' });
  expect((await page.locator(tid('target-job-input')).inputValue()) === JOB, 'the drawer shows another target');
  await page.locator(`${tid('target-auth')} input[value="bearer"]`).check();
  // a new auth kind needs its secret
  await page.locator(tid('target-save')).click();
  const msg = await fieldError('target-bearer');
  expect(/required/i.test(msg), `bearer token: ${msg}`);
  await page.locator(tid('target-bearer')).fill(token);
  await page.locator(tid('target-save')).click();
  await page.locator(tid('target-drawer')).waitFor({ state: 'hidden' });
});

await step('with the token the target is up and has samples', async () => {
  await waitHealth('up', SCRAPE_WAIT);
  const samples = Number((await row().locator(tid('target-samples')).innerText()).replace(/[^0-9]/g, ''));
  expect(samples > 0, `samples: ${samples}`);
  console.log(`     ${samples} samples per scrape`);
}, SCRAPE_WAIT);

await step('edit again: the stored token is kept unless a new one is typed', async () => {
  await row().locator(tid('target-edit')).click();
  await page.locator(tid('target-drawer')).waitFor({ state: 'visible' });
  const extra = await page.locator('.ant-form-item', { has: page.locator(tid('target-bearer')) }).innerText();
  expect(/kept unless you type/.test(extra), `the bearer field says ${JSON.stringify(extra)}`);
  expect((await page.locator(tid('target-bearer')).inputValue()) === '', 'the secret is shown back');
  await page.locator(tid('target-cancel')).click();
  await page.locator(tid('target-drawer')).waitFor({ state: 'hidden' });
});

await step(`edit: scraped by the agent of ${EXPECT_HOST} (it runs on this machine)`, async () => {
  await row().locator(tid('target-edit')).click();
  await page.locator(tid('target-drawer')).waitFor({ state: 'visible' });
  await page.locator(tid('target-via-select')).click();
  await page.locator('.ant-select-dropdown:visible .ant-select-item-option', { hasText: EXPECT_HOST }).first().click();
  const help = await page.locator('.ant-form-item', { has: page.locator(tid('target-via-select')) }).innerText();
  expect(/localhost/.test(help), `the field says ${JSON.stringify(help)}`);
  const saved = Date.now();
  await page.locator(tid('target-save')).click();
  await page.locator(tid('target-drawer')).waitFor({ state: 'hidden' });
  await row().locator(tid('target-via')).filter({ hasText: EXPECT_HOST }).waitFor({ state: 'visible' });
  // a scrape after the change (by the agent now) that succeeded
  const until = Date.now() + SCRAPE_WAIT;
  let mine;
  for (;;) {
    const list = JSON.parse((await apiCall('GET', '/scrape-targets')).body);
    mine = list.items.find((x) => x.job === JOB);
    if (mine?.last_scrape && Date.parse(mine.last_scrape) >= saved - 1000 && mine.health === 'up') break;
    expect(Date.now() < until, `no successful scrape by the agent: ${JSON.stringify(mine)}`);
    await page.waitForTimeout(500);
  }
  expect(mine.via_hostname === EXPECT_HOST && mine.auth === 'bearer', `the server has ${JSON.stringify(mine)}`);
  await waitHealth('up', SCRAPE_WAIT);
}, SCRAPE_WAIT);

let remoteWrite = 0;
await step('the remote-write card is there exactly when the server has the route', async () => {
  const r = await apiCall('GET', '/remote-write');
  remoteWrite = r.status;
  if (r.status === 200) await page.locator(tid('remote-write')).waitFor({ state: 'visible' });
  else {
    expect(r.status === 404, `GET /remote-write answered ${r.status}`);
    expect((await page.locator(tid('remote-write')).count()) === 0, 'the card is shown without the route');
  }
  console.log(`     GET /api/v1/remote-write: ${r.status}`);
});

await step('screenshot the targets page (English and Chinese)', async () => {
  await page.mouse.move(1400, 20);
  await page.locator('.ant-message-notice').waitFor({ state: 'detached' }).catch(() => undefined);
  await page.screenshot({ path: join(SHOTS, 'scrape-targets.png'), fullPage: true });
  await page.locator(tid('lang-switch')).click();
  await page.locator(tid('lang-zh-CN')).click();
  await page.locator(tid('tab-targets')).filter({ hasText: '采集目标' }).waitFor({ state: 'visible' });
  await row().locator(tid('target-edit')).click();
  await page.locator(tid('target-drawer')).waitFor({ state: 'visible' });
  await settled(page.locator('.ant-drawer-content-wrapper'));
  await page.mouse.move(1400, 20);
  await page.screenshot({ path: join(SHOTS, 'scrape-target-edit-zh.png') });
  await page.locator(tid('target-cancel')).click();
  await page.locator(tid('target-drawer')).waitFor({ state: 'hidden' });
  await page.locator('.ant-message-notice').waitFor({ state: 'detached' }).catch(() => undefined);
  await page.screenshot({ path: join(SHOTS, 'scrape-targets-zh.png'), fullPage: true });
  await page.locator(tid('lang-switch')).click();
  await page.locator(tid('lang-en')).click();
  await page.locator(tid('tab-targets')).filter({ hasText: 'Scrape targets' }).waitFor({ state: 'visible' });
});

await step('delete the target after confirmation', async () => {
  await row().locator(tid('target-delete')).click();
  await page.locator(`.ant-popover:visible ${tid('confirm-ok')}`).click();
  await row().waitFor({ state: 'detached' });
  const list = JSON.parse((await apiCall('GET', '/scrape-targets')).body);
  expect(!list.items.some((x) => x.job === JOB), 'the server still lists the target');
  const tokens = JSON.parse((await apiCall('GET', '/tokens')).body);
  const mine = tokens.items.find((x) => x.name === `scrape ${JOB}`);
  if (mine) await apiCall('DELETE', `/tokens/${mine.id}`);
});

await step('completion: node_lo offers node_load1; ↓ ↑ move, Tab inserts', async () => {
  await page.locator(tid('tab-explorer')).click();
  const input = page.locator(tid('promql-input'));
  await input.waitFor({ state: 'visible' });
  await input.click();
  await input.fill('');
  await page.keyboard.type('node_lo');
  await page.locator(`${tid('promql-option')}[data-value="node_load15"]`).waitFor({ state: 'visible' });
  const first = await activeOption();
  await page.keyboard.press('ArrowDown');
  const second = await activeOption();
  await page.keyboard.press('ArrowUp');
  expect((await activeOption()) === first && second !== first, `active: ${first}, after ↓ ${second}`);
  // to node_load1 itself
  const values = await page.locator(tid('promql-option')).evaluateAll((els) => els.map((e) => e.getAttribute('data-value')));
  const at = values.indexOf('node_load1');
  expect(at >= 0, `options: ${values.join(', ')}`);
  for (let i = 0; i < at; i++) await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Tab');
  const v = await input.inputValue();
  expect(v === 'node_load1', `the input reads ${JSON.stringify(v)}`);
  await page.locator(tid('promql-completions')).waitFor({ state: 'hidden' });
});

await step('completion: a label name, then a label value of the series', async () => {
  const input = page.locator(tid('promql-input'));
  await page.keyboard.type('{ins');
  await page.locator(`${tid('promql-option')}[data-value="instance"]`).waitFor({ state: 'visible' });
  await page.keyboard.press('Enter');
  let v = await input.inputValue();
  expect(v === 'node_load1{instance=""', `after the label: ${JSON.stringify(v)}`);
  const hostOption = page.locator(`${tid('promql-option')}[data-value="${EXPECT_HOST}"]`);
  await hostOption.waitFor({ state: 'visible' });
  await page.mouse.move(1400, 20);
  await page.screenshot({ path: join(SHOTS, 'explorer-completion.png') });
  await hostOption.click();
  v = await input.inputValue();
  expect(v === `node_load1{instance="${EXPECT_HOST}"`, `after the value: ${JSON.stringify(v)}`);
  await page.keyboard.type('}');
});

await step('Esc closes the list; Enter runs the query', async () => {
  const input = page.locator(tid('promql-input'));
  await page.keyboard.type(' or rat');
  await page.locator(`${tid('promql-option')}[data-value="rate"]`).waitFor({ state: 'visible' });
  await page.keyboard.press('Escape');
  await page.locator(tid('promql-completions')).waitFor({ state: 'hidden' });
  await input.fill(`node_load1{instance="${EXPECT_HOST}"}`);
  await input.press('End');
  await page.keyboard.press('Enter');
  await page.locator(tid('promql-tab-table')).click();
  const r = page.locator(`${tid('promql-table')} ${tid('promql-row')}`).filter({ hasText: `instance="${EXPECT_HOST}"` });
  await r.first().waitFor({ state: 'visible' });
  const rows = await page.locator(`${tid('promql-table')} ${tid('promql-row')}`).count();
  expect(rows === 1, `${rows} rows for one host's node_load1`);
});

await step(`the Processes tab of ${EXPECT_HOST}`, async () => {
  await page.locator(tid('nav-hosts')).click();
  await page.locator(tid(`host-link-${EXPECT_HOST}`)).click();
  await page.locator(tid('host-detail')).waitFor({ state: 'visible' });
  await page.locator(tid('host-tab-processes')).click();
  await page.locator(tid('host-processes')).waitFor({ state: 'visible' });
  const outcome = await Promise.race([
    page.locator(tid('process-row')).first().waitFor({ state: 'visible' }).then(() => 'rows'),
    page.locator(tid('procs-unavailable')).waitFor({ state: 'visible' }).then(() => 'unavailable'),
    page.locator(tid('procs-error')).waitFor({ state: 'visible' }).then(() => 'error'),
    page.locator(tid('procs-offline')).waitFor({ state: 'visible' }).then(() => 'offline'),
  ]);
  if (outcome === 'unavailable') {
    console.log('     the server has no /hosts/{id}/processes yet: the tab says so');
    return;
  }
  expect(outcome === 'rows', `the tab shows ${outcome}: ${await page.locator(tid('host-processes')).innerText()}`);
  const info = await page.locator(tid('procs-info')).innerText();
  const pids = await page.locator(tid('process-row')).evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-pid'))));
  expect(pids.length > 0 && pids.every((p) => Number.isInteger(p) && p > 0), `pids: ${pids}`);
  console.log(`     ${info}`);
  // by memory: RSS does not grow down the table
  await page.locator(tid('procs-sort-memory')).click();
  await page.waitForResponse((r) => r.url().includes('/processes') && r.url().includes('sort=memory'));
  await page.locator(tid('procs-table')).locator('.ant-spin-spinning').waitFor({ state: 'detached' }).catch(() => undefined);
  const names = await page.locator(tid('process-name')).allInnerTexts();
  expect(names.length > 0, 'no rows sorted by memory');
  const res = await apiCall('GET', `/hosts?q=${encodeURIComponent(EXPECT_HOST)}`);
  const host = JSON.parse(res.body).items.find((h) => h.hostname === EXPECT_HOST);
  const api = JSON.parse((await apiCall('GET', `/hosts/${host.id}/processes?sort=memory&limit=20`)).body);
  const rss = api.items.map((p) => p.rss_bytes);
  expect(rss.every((x, i) => i === 0 || x <= rss[i - 1]), `rss by memory: ${rss}`);
  console.log(`     top by memory: ${names.slice(0, 5).join(', ')}`);
  await page.mouse.move(1400, 20);
  await page.screenshot({ path: join(SHOTS, 'processes.png'), fullPage: true });
});

console.log(`     (remote write route: ${remoteWrite})`);
await finish();
