// Shared harness of the browser scripts: environment, Chromium (Debian's, headless), numbered
// steps that stop at the first failure with a screenshot, sign-in, and the closing line
// `browser NAME: N passed, K failed` that the Rust test looks for.
//
//   OMP_URL, OMP_ADMIN_PASSWORD, [OMP_ADMIN_USER=admin], [OMP_SCREENSHOT_DIR],
//   [CHROMIUM_PATH=/usr/bin/chromium], plus whatever variables a script needs.
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const STEP_TIMEOUT = 30_000;
export const VIEWPORT = { width: 1440, height: 900 };
export const tid = (id) => `[data-testid="${id}"]`;

export function expect(cond, message) {
  if (!cond) throw new Error(message);
}

function withTimeout(promise, ms, name) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`step "${name}" took longer than ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Starts a suite: checks the environment (OMP_URL, OMP_ADMIN_PASSWORD and `needs`), opens
 *  Chromium and a page, and returns the pieces every script uses. */
export async function suite(name, needs = [], contextOptions = {}) {
  const BASE = (process.env.OMP_URL ?? '').replace(/\/+$/, '');
  const USER = process.env.OMP_ADMIN_USER || 'admin';
  const PASSWORD = process.env.OMP_ADMIN_PASSWORD ?? '';
  const SHOTS = process.env.OMP_SCREENSHOT_DIR || join(tmpdir(), 'omp-e2e-screenshots');
  const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  const missing = ['OMP_URL', 'OMP_ADMIN_PASSWORD', ...needs].filter((k) => !process.env[k]);
  if (missing.length) {
    console.error(`browser ${name}: set ${missing.join(', ')}`);
    console.log(`browser ${name}: 0 passed, 1 failed`);
    process.exit(1);
  }
  mkdirSync(SHOTS, { recursive: true });
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  } catch (e) {
    console.error(`browser ${name}: cannot start Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH): ${String(e).split('\n')[0]}`);
    console.log(`browser ${name}: 0 passed, 1 failed`);
    process.exit(1);
  }
  const context = await browser.newContext({ viewport: VIEWPORT, locale: 'en-US', ...contextOptions });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
  });
  const counts = { passed: 0, failed: 0 };

  /** Runs one step unless an earlier one failed; a failure is reported with a screenshot. */
  async function step(stepName, fn, timeout = STEP_TIMEOUT) {
    if (counts.failed) return;
    const t0 = Date.now();
    try {
      await withTimeout(fn(), timeout + 5_000, stepName);
      counts.passed += 1;
      console.log(`ok   ${stepName} (${Date.now() - t0} ms)`);
    } catch (e) {
      counts.failed += 1;
      console.log(`FAIL ${stepName}: ${e instanceof Error ? e.message.split('\n')[0] : e}`);
      const shot = join(SHOTS, `failure-${name}-${stepName.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.png`);
      await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
      console.log(`     page: ${page.url()}; screenshot: ${shot}`);
      if (pageErrors.length) console.log(`     browser errors:\n       ${pageErrors.slice(-5).join('\n       ')}`);
    }
  }

  /** Opens the UI and signs in as the admin (the password must not need changing). */
  async function signIn() {
    const res = await page.goto(BASE + '/', { waitUntil: 'domcontentloaded' });
    expect(res && res.ok(), `GET / answered ${res?.status()}`);
    await page.locator(tid('login-username')).fill(USER);
    await page.locator(tid('login-password')).fill(PASSWORD);
    await page.locator(tid('login-submit')).click();
    const outcome = await Promise.race([
      page.locator(tid('main-menu')).waitFor({ state: 'visible' }).then(() => 'menu'),
      page.locator(tid('forced-password')).waitFor({ state: 'visible' }).then(() => 'forced'),
      page.locator(tid('login-error')).waitFor({ state: 'visible' }).then(() => 'error'),
    ]);
    if (outcome === 'error') throw new Error(`sign-in refused: ${await page.locator(tid('login-error')).innerText()}`);
    expect(outcome === 'menu', 'the server asks the admin to change the password first (was OMP_ADMIN_PASSWORD set?)');
    await page.locator(tid('dashboard')).waitFor({ state: 'visible' });
  }

  /** Closes the browser, prints the closing line and exits with the verdict. */
  async function finish() {
    await browser.close();
    const notRun = counts.failed ? ' (later steps not run)' : '';
    console.log(`screenshots in ${SHOTS}`);
    console.log(`browser ${name}: ${counts.passed} passed, ${counts.failed} failed${notRun}`);
    process.exit(counts.failed ? 1 : 0);
  }

  return { BASE, USER, PASSWORD, SHOTS, browser, context, page, pageErrors, counts, step, signIn, finish };
}
