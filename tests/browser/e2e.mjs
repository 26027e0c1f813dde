// Browser end-to-end test of the OMP web UI against a running server.
//
//   OMP_URL=http://127.0.0.1:45678 OMP_ADMIN_PASSWORD=... [OMP_ADMIN_USER=admin]
//   [OMP_SCREENSHOT_DIR=dir] [CHROMIUM_PATH=/usr/bin/chromium] node e2e.mjs
//
// Signs in as the admin, switches the language to Chinese and back, creates a user with the
// viewer role, finds the users.create record in the audit log, and saves login.png, users.png
// and audit.png. Stops at the first failed step; prints `browser e2e: N passed, K failed`.
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect, suite, tid } from './harness.mjs';



const newUser = `e2e-${randomBytes(4).toString('hex')}`;
const { BASE, USER, PASSWORD, SHOTS, page, step, finish } = await suite('e2e', []);

await step('open the UI and see the sign-in page', async () => {
  const res = await page.goto(BASE + '/', { waitUntil: 'domcontentloaded' });
  expect(res && res.ok(), `GET / answered ${res?.status()}`);
  await page.locator(tid('login-username')).waitFor({ state: 'visible' });
  await page.locator(tid('login-submit')).waitFor({ state: 'visible' });
  await page.screenshot({ path: join(SHOTS, 'login.png'), fullPage: true });
});

await step(`sign in as ${USER}`, async () => {
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
});

// Picks a language from the header menu. The menu can re-render while the first page is
// still loading its data (closing under the pointer), so a pick that did not take is retried.
async function pickLanguage(code, navLabel) {
  for (let attempt = 1; ; attempt++) {
    await page.locator(tid('lang-switch')).click();
    const option = page.locator(tid(`lang-${code}`));
    await option.waitFor({ state: 'visible' });
    await option.click();
    try {
      await page.locator(tid('nav-users')).getByText(navLabel).waitFor({ state: 'visible', timeout: 5_000 });
      return;
    } catch (e) {
      if (attempt >= 3) throw e;
      await page.keyboard.press('Escape');
    }
  }
}

await step('switch the language to 简体中文', async () => {
  await pickLanguage('zh-CN', '用户与角色');
  await page.locator(tid('nav-audit')).getByText('审计日志').waitFor({ state: 'visible' });
});

await step('switch the language back to English', async () => {
  await pickLanguage('en', 'Users & roles');
});

await step('open Users & roles', async () => {
  await page.locator(tid('nav-users')).click();
  await page.locator(tid('users-table')).waitFor({ state: 'visible' });
  await page.locator(tid(`user-row-${USER}`)).waitFor({ state: 'visible' });
});

await step(`create user ${newUser} with role viewer`, async () => {
  await page.locator(tid('user-create')).click();
  await page.locator(tid('user-form-username')).fill(newUser);
  await page.locator(tid('user-form-password')).fill(`Pw-${randomBytes(8).toString('hex')}`);
  await page.locator(tid('user-form-display-name')).fill('E2E test user');
  await page.locator(tid('user-form-roles')).click();
  await page.locator(tid('role-option-viewer')).click();
  // close the dropdown without closing the modal
  await page.locator('.ant-modal-title').click();
  await page.locator(tid('user-form-submit')).click();
  await page.locator('.ant-modal-title').waitFor({ state: 'hidden' });
});

await step(`see ${newUser} in the users table`, async () => {
  const row = page.locator(tid(`user-row-${newUser}`));
  await row.waitFor({ state: 'visible' });
  const text = await row.innerText();
  expect(text.includes('viewer'), `the row of ${newUser} does not show the viewer role: ${JSON.stringify(text)}`);
  await page.mouse.move(1200, 850);
  await page.screenshot({ path: join(SHOTS, 'users.png'), fullPage: true });
});

await step(`find the users.create record of ${newUser} in the audit log`, async () => {
  await page.locator(tid('nav-audit')).click();
  await page.locator(tid('audit-table')).waitFor({ state: 'visible' });
  const search = page.locator(`input${tid('audit-search')}, ${tid('audit-search')} input`).first();
  await search.fill(newUser);
  await search.press('Enter');
  const row = page.locator(`${tid('audit-table')} tr[data-testid^="audit-row-"]`).filter({ hasText: 'users.create' }).filter({ hasText: newUser });
  await row.first().waitFor({ state: 'visible' });
  await page.mouse.move(1200, 850);
  await page.screenshot({ path: join(SHOTS, 'audit.png'), fullPage: true });
});

await finish();
