// Browser test of the "Files" card of the host detail page against a running server.
//
//   OMP_URL=http://127.0.0.1:45678 OMP_ADMIN_PASSWORD=... [OMP_ADMIN_USER=admin]
//   OMP_EXPECT_HOST=hostname OMP_FILES_DIR=/writable/folder [OMP_HOST_WAIT_SECS=90]
//   [OMP_SCREENSHOT_DIR=dir] [CHROMIUM_PATH=/usr/bin/chromium] node files.mjs
//
// OMP_EXPECT_HOST must be an online host that runs on this machine (the server's embedded
// agent, for example) and OMP_FILES_DIR a folder it can write, because the test checks the
// uploaded file on disk with node's fs. Signs in as the admin, opens that host's detail page,
// uploads a generated file (made in os.tmpdir()) to OMP_FILES_DIR/uploaded.txt with mode 0600,
// expects the SHA-256 in the result and the file on disk with that content and mode; checks that
// an upload damaged on the way (one byte flipped by a route) is refused, that downloading a
// folder shows the server's error and that a download damaged on the way is not saved; downloads
// the file back through the card and compares the bytes, then tries a path with `..` and expects
// the server's error in the card. Saves files.png. Stops at the first failed step; prints
// `browser files: N passed, K failed`.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, suite, tid } from './harness.mjs';

const EXPECT_HOST = process.env.OMP_EXPECT_HOST ?? '';
const FILES_DIR = (process.env.OMP_FILES_DIR ?? '').replace(/\/+$/, '');
const HOST_WAIT = Number(process.env.OMP_HOST_WAIT_SECS || 90) * 1000;


// the local file to upload: a few lines that differ on every run, including non-ASCII bytes
const work = mkdtempSync(join(tmpdir(), 'omp-files-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const localName = 'omp-upload.txt';
const localPath = join(work, localName);
const content = Buffer.from(`OMP file transfer test ${new Date().toISOString()} ${Math.random()}\nzweite Zeile: äöü — 第三行\n`, 'utf8');
writeFileSync(localPath, content);
const sha = createHash('sha256').update(content).digest('hex');
const target = `${FILES_DIR}/uploaded.txt`;
rmSync(target, { force: true });

const { USER, SHOTS, page, step, signIn, finish } = await suite('files', ['OMP_EXPECT_HOST', 'OMP_FILES_DIR'], { acceptDownloads: true });

await step(`sign in as ${USER}`, signIn);


await step(`open the detail page of ${EXPECT_HOST}`, async () => {
  await page.locator(tid('nav-hosts')).click();
  const row = page.locator(tid(`host-row-${EXPECT_HOST}`));
  await row.locator(`${tid('host-status')}[data-status="online"]`).waitFor({ state: 'visible', timeout: HOST_WAIT });
  await page.locator(tid(`host-link-${EXPECT_HOST}`)).click();
  await page.locator(tid('host-detail')).waitFor({ state: 'visible' });
  const name = (await page.locator(tid('host-detail-name')).innerText()).trim();
  expect(name === EXPECT_HOST, `the detail page shows ${JSON.stringify(name)}`);
  await page.locator(tid('files-card')).waitFor({ state: 'visible' });
}, HOST_WAIT);

await step('pick a file: the path defaults to /tmp/<name>', async () => {
  await page.locator(tid('files-card')).scrollIntoViewIfNeeded();
  await page.locator(`input[type="file"]${tid('files-upload-input')}`).setInputFiles(localPath);
  const path = await page.locator(tid('files-upload-path')).inputValue();
  expect(path === `/tmp/${localName}`, `the target path is ${JSON.stringify(path)}, not /tmp/${localName}`);
  const mode = await page.locator(tid('files-upload-mode')).inputValue();
  expect(mode === '0644', `the mode defaults to ${JSON.stringify(mode)}`);
});

await step('a mode that is not octal is refused in the form', async () => {
  await page.locator(tid('files-upload-mode')).fill('0689');
  await page.locator(tid('files-upload-submit')).click();
  await page.getByText('Octal permission bits', { exact: false }).first().waitFor({ state: 'visible' });
  expect((await page.locator(tid('files-upload-result')).count()) === 0, 'an upload was attempted with mode 0689');
});

await step(`upload it to ${target} with mode 0600`, async () => {
  await page.locator(tid('files-upload-path')).fill(target);
  await page.locator(tid('files-upload-mode')).fill('0600');
  await page.locator(tid('files-upload-submit')).click();
  const result = page.locator(tid('files-upload-result'));
  await result.waitFor({ state: 'visible' });
  const status = await result.getAttribute('data-status');
  if (status !== 'ok') throw new Error(`the upload failed: ${(await result.innerText()).replace(/\s+/g, ' ')}`);
  const shown = (await page.locator(tid('files-upload-sha256')).innerText()).trim();
  expect(shown === sha, `the result shows sha256 ${shown}, the file has ${sha}`);
  const size = await page.locator(tid('files-upload-size')).innerText();
  expect(size.includes(String(content.length)), `the result shows size ${JSON.stringify(size)}, the file has ${content.length} bytes`);
});

await step('the file is on disk with the content and mode 0600', async () => {
  const st = statSync(target);
  expect(st.isFile(), `${target} is not a regular file`);
  const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
  expect(mode === '0600', `${target} has mode ${mode}, not 0600`);
  expect(readFileSync(target).equals(content), `${target} does not hold the uploaded bytes`);
});

await step('an upload damaged on the way is refused by the server', async () => {
  // flip one byte of the body after the page computed its SHA-256
  const url = '**/api/v1/hosts/*/files?*';
  await page.route(url, (route) => {
    const body = route.request().postDataBuffer();
    if (!body || !body.length) return route.continue();
    const bad = Buffer.from(body);
    bad[0] ^= 0x01;
    return route.continue({ postData: bad });
  });
  try {
    await page.locator(tid('files-upload-submit')).click();
    const result = page.locator(`${tid('files-upload-result')}[data-status="error"]`);
    await result.waitFor({ state: 'visible' });
    const msg = await result.locator(tid('files-error-message')).innerText();
    expect(msg.includes('arrived damaged'), `the error reads ${JSON.stringify(msg)}`);
  } finally {
    await page.unroute(url);
  }
  expect(readFileSync(target).equals(content), `${target} changed after the refused upload`);
});

await step('a download of a folder shows the server error', async () => {
  await page.locator(tid('files-download-path')).fill(FILES_DIR);
  await page.locator(tid('files-download-submit')).click();
  const result = page.locator(`${tid('files-download-result')}[data-status="error"]`);
  await result.waitFor({ state: 'visible' });
  const msg = await result.locator(tid('files-error-message')).innerText();
  expect(msg.includes('not a regular file'), `the error reads ${JSON.stringify(msg)}`);
});

await step('a download damaged on the way is not saved', async () => {
  const url = '**/api/v1/hosts/*/files/download';
  await page.route(url, async (route) => {
    const resp = await route.fetch();
    const body = Buffer.from(await resp.body());
    if (body.length) body[body.length - 1] ^= 0x01;
    await route.fulfill({ response: resp, body });
  });
  let downloads = 0;
  const count = () => (downloads += 1);
  page.on('download', count);
  try {
    await page.locator(tid('files-download-path')).fill(target);
    await page.locator(tid('files-download-submit')).click();
    const result = page.locator(`${tid('files-download-result')}[data-status="error"]`);
    await result.waitFor({ state: 'visible' });
    await result.getByText('arrived damaged').waitFor({ state: 'visible' });
    await page.waitForTimeout(500);
    expect(downloads === 0, 'the damaged file was saved');
  } finally {
    page.off('download', count);
    await page.unroute(url);
  }
});

await step('download it back through the card', async () => {
  await page.locator(tid('files-download-path')).fill(target);
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator(tid('files-download-submit')).click()]);
  const name = download.suggestedFilename();
  expect(name === 'uploaded.txt', `the download is named ${JSON.stringify(name)}, not uploaded.txt`);
  const saved = join(work, 'downloaded.txt');
  await download.saveAs(saved);
  expect(readFileSync(saved).equals(content), 'the downloaded bytes differ from the uploaded file');
  const result = page.locator(tid('files-download-result'));
  await result.waitFor({ state: 'visible' });
  expect((await result.getAttribute('data-status')) === 'ok', `the download result says ${(await result.innerText()).replace(/\s+/g, ' ')}`);
  const shown = (await page.locator(tid('files-download-sha256')).innerText()).trim();
  expect(shown === sha, `the download result shows sha256 ${shown}, the file has ${sha}`);
  await result.getByText('SHA-256 verified').waitFor({ state: 'visible' });
});

await step('an upload to a path with .. shows the server error', async () => {
  const bad = `${FILES_DIR}/../uploaded-evil.txt`;
  await page.locator(tid('files-upload-path')).fill(bad);
  await page.locator(tid('files-upload-submit')).click();
  const result = page.locator(`${tid('files-upload-result')}[data-status="error"]`);
  await result.waitFor({ state: 'visible' });
  const msg = await result.locator(tid('files-error-message')).innerText();
  expect(msg.includes('must not contain ..'), `the error reads ${JSON.stringify(msg)}`);
  let exists = true;
  try {
    statSync(join(FILES_DIR, '..', 'uploaded-evil.txt'));
  } catch {
    exists = false;
  }
  expect(!exists, 'the file was written outside the folder');
});

await step('screenshot the files card', async () => {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.mouse.move(1400, 880);
  await page.screenshot({ path: join(SHOTS, 'files.png'), fullPage: true });
});

await finish();
