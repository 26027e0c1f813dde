// Browser test of the host metrics charts and the metrics explorer against a running server.
//
//   OMP_URL=http://127.0.0.1:45678 OMP_ADMIN_PASSWORD=... [OMP_ADMIN_USER=admin]
//   OMP_EXPECT_HOST=hostname [OMP_HOST_WAIT_SECS=90] [OMP_METRICS_WAIT_SECS=60]
//   [OMP_SCREENSHOT_DIR=dir] [CHROMIUM_PATH=/usr/bin/chromium] node metrics.mjs
//
// OMP_EXPECT_HOST must be an online host whose agent sends metrics (the server's embedded agent,
// for example). Signs in as the admin, opens that host's detail page and waits (up to
// OMP_METRICS_WAIT_SECS) until the "Metrics" card draws at least one series in the load and the
// CPU charts; checks that every chart is there and no query failed, switches the range to the
// last 15 minutes (host-metrics.png). Then, when GET /api/v1/system/info reports the module
// `monitoring` available, opens the explorer (/monitoring), checks that `node_lo` offers
// `node_load1`, runs `node_load1` and expects a table row and a graph series for the host, and
// runs `sum(` (a syntax error) and expects the server's error shown (explorer-error.png), then
// graphs the host's network traffic (explorer.png); otherwise it
// checks the honest "not available yet" page. Stops at the first failed step; prints
// `browser metrics: N passed, K failed`.
import { join } from 'node:path';
import { expect, suite, tid } from './harness.mjs';

const EXPECT_HOST = process.env.OMP_EXPECT_HOST ?? '';
const HOST_WAIT = Number(process.env.OMP_HOST_WAIT_SECS || 90) * 1000;
const METRICS_WAIT = Number(process.env.OMP_METRICS_WAIT_SECS || 60) * 1000;
const CHARTS = ['cpu', 'memory', 'load', 'network', 'disk', 'fs'];


const { USER, SHOTS, page, step, signIn, finish } = await suite('metrics', ['OMP_EXPECT_HOST']);

/** data-series of a chart container (-1 when it is not there). */
async function seriesCount(testid) {
  const el = page.locator(tid(testid));
  if (!(await el.count())) return -1;
  return Number((await el.first().getAttribute('data-series')) ?? '-1');
}

async function waitSeries(testids, timeout) {
  const until = Date.now() + timeout;
  let counts = [];
  for (;;) {
    counts = await Promise.all(testids.map(seriesCount));
    if (counts.every((n) => n >= 1)) return counts;
    if (Date.now() > until) {
      throw new Error(`after ${timeout / 1000} s: ${testids.map((id, i) => `${id} data-series=${counts[i]}`).join(', ')}`);
    }
    await page.waitForTimeout(1000);
  }
}

await step(`sign in as ${USER}`, signIn);

await step(`open the detail page of ${EXPECT_HOST}`, async () => {
  await page.locator(tid('nav-hosts')).click();
  const row = page.locator(tid(`host-row-${EXPECT_HOST}`));
  await row.locator(`${tid('host-status')}[data-status="online"]`).waitFor({ state: 'visible', timeout: HOST_WAIT });
  await page.locator(tid(`host-link-${EXPECT_HOST}`)).click();
  await page.locator(tid('host-detail')).waitFor({ state: 'visible' });
  const name = (await page.locator(tid('host-detail-name')).innerText()).trim();
  expect(name === EXPECT_HOST, `the detail page shows ${JSON.stringify(name)}`);
  await page.locator(tid('metrics-card')).waitFor({ state: 'visible' });
  await page.locator(tid('metrics-range')).waitFor({ state: 'visible' });
}, HOST_WAIT);

await step('the load and CPU charts draw series', async () => {
  await page.locator(tid('metrics-card')).scrollIntoViewIfNeeded();
  const [load, cpu] = await waitSeries(['chart-load', 'chart-cpu'], METRICS_WAIT);
  console.log(`     chart-load: ${load} series, chart-cpu: ${cpu} series`);
}, METRICS_WAIT);

await step('every chart is there and no query failed', async () => {
  const counts = [];
  for (const c of CHARTS) {
    const n = await seriesCount(`chart-${c}`);
    expect(n >= 0, `chart-${c} is missing`);
    counts.push(`${c}=${n}`);
  }
  console.log(`     series: ${counts.join(' ')}`);
  const errors = page.locator('[data-testid^="chart-"][data-testid$="-error"]');
  if (await errors.count()) throw new Error(`a chart query failed: ${await errors.first().innerText()}`);
  // memory is one series; the agent reports the root filesystem and network devices
  await waitSeries(['chart-memory', 'chart-fs', 'chart-network'], METRICS_WAIT);
}, METRICS_WAIT);

await step('switch the range to the last 15 minutes', async () => {
  await page.locator(tid('metrics-range-select')).click();
  await page.locator('.ant-select-dropdown:visible .ant-select-item-option', { hasText: 'Last 15 minutes' }).click();
  await page.locator(tid('metrics-range-select')).filter({ hasText: 'Last 15 minutes' }).waitFor({ state: 'visible' });
  await waitSeries(['chart-load', 'chart-cpu'], 15_000);
});

await step('screenshot the metrics card', async () => {
  // the whole page at scroll 0 (the sticky header would cover an element screenshot), cut to the card
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.mouse.move(1400, 20);
  const box = await page.locator(tid('metrics-card')).boundingBox();
  expect(box, 'the metrics card has no box');
  await page.screenshot({ path: join(SHOTS, 'host-metrics.png'), fullPage: true, clip: { x: box.x - 8, y: box.y - 8, width: box.width + 16, height: box.height + 16 } });
});

let monitoring = false;
await step('read whether the server offers monitoring', async () => {
  const info = await page.evaluate(() => fetch('/api/v1/system/info', { credentials: 'same-origin' }).then((r) => r.json()));
  monitoring = !!info?.modules?.find((m) => m.key === 'monitoring')?.available;
  console.log(`     module monitoring: ${monitoring ? 'available' : 'not available'}`);
});

if (!monitoring) {
  await step('Monitoring shows "not available yet"', async () => {
    await page.locator(tid('nav-monitoring')).click();
    await page.locator(tid('unavailable-monitoring')).waitFor({ state: 'visible' });
    console.log('     (the explorer steps need the module: skipped)');
  });
} else {
  await step('open the metrics explorer', async () => {
    await page.locator(tid('nav-monitoring')).click();
    await page.locator(tid('promql-input')).waitFor({ state: 'visible' });
    expect(new URL(page.url()).pathname === '/monitoring', `the address is ${page.url()}`);
  });

  await step('node_lo completes to node_load1', async () => {
    await page.locator(tid('promql-input')).click();
    await page.keyboard.type('node_lo');
    await page.locator(`${tid('promql-option')}[data-value="node_load15"]`).waitFor({ state: 'visible' });
    await page.locator(`${tid('promql-option')}[data-value="node_load1"]`).click();
    const v = await page.locator(tid('promql-input')).inputValue();
    expect(v.startsWith('node_load1'), `the input reads ${JSON.stringify(v)}`);
  });

  await step('run node_load1: a table row and a graph series for the host', async () => {
    await page.locator(tid('promql-input')).fill('node_load1');
    await page.locator(tid('promql-run')).click();
    await page.locator(tid('promql-tab-table')).click();
    const row = page.locator(`${tid('promql-table')} ${tid('promql-row')}`).filter({ hasText: `instance="${EXPECT_HOST}"` });
    await row.first().waitFor({ state: 'visible' });
    const text = await row.first().innerText();
    expect(/node_load1/.test(text), `the row reads ${JSON.stringify(text)}`);
    await page.locator(tid('promql-tab-graph')).click();
    await waitSeries(['promql-graph'], 10_000);
  });

  await step('a syntax error (sum() shows the server error', async () => {
    await page.locator(tid('promql-input')).fill('sum(');
    await page.locator(tid('promql-input')).press('Control+Enter');
    await page.locator(tid('promql-error')).waitFor({ state: 'visible' });
    const msg = (await page.locator(tid('promql-error-message')).innerText()).trim();
    expect(msg.length > 0, 'the error message is empty');
    console.log(`     error: ${msg}`);
    await page.mouse.move(1400, 20);
    await page.screenshot({ path: join(SHOTS, 'explorer-error.png'), fullPage: true });
  });

  await step('screenshot the explorer', async () => {
    // the graph of a real query for the picture
    await page.locator(tid('promql-input')).fill(`rate(node_network_receive_bytes_total{instance="${EXPECT_HOST}",device!="lo"}[1m])`);
    await page.locator(tid('promql-run')).click();
    await page.locator(tid('promql-error')).waitFor({ state: 'hidden' });
    await page.locator(`${tid('promql-graph')}:not([data-series="0"])`).waitFor({ state: 'visible' });
    await page.mouse.move(1400, 20);
    await page.locator('.ant-tooltip:visible').waitFor({ state: 'hidden' }).catch(() => undefined);
    await page.screenshot({ path: join(SHOTS, 'explorer.png'), fullPage: true });
  });
}

await finish();
