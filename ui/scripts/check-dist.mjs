// Rebuilds the UI into a temporary directory and compares it with ../ui-dist, file list and
// content. Exits 1 when ui-dist is stale (someone changed ui/ without rebuilding).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const uiDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = resolve(uiDir, '..', 'ui-dist');
const tmp = mkdtempSync(join(tmpdir(), 'omp-ui-dist-'));
const out = join(tmp, 'ui-dist');

function walk(dir, base = dir) {
  const files = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files.push(...walk(p, base));
    else files.push(relative(base, p).split('\\').join('/'));
  }
  return files;
}

try {
  execFileSync(process.execPath, [join(uiDir, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn'], {
    cwd: uiDir,
    stdio: 'inherit',
    env: { ...process.env, OMP_UI_OUT_DIR: out },
  });
  execFileSync(process.execPath, [join(uiDir, 'scripts', 'precompress.mjs'), out], { cwd: uiDir, stdio: 'inherit' });

  let distFiles = [];
  try {
    distFiles = walk(dist);
  } catch {
    console.error(`check-dist: ${dist} does not exist; run npm run build`);
    process.exit(1);
  }
  const fresh = walk(out);
  const problems = [];
  const a = new Set(distFiles);
  const b = new Set(fresh);
  for (const f of fresh) if (!a.has(f)) problems.push(`missing in ui-dist: ${f}`);
  for (const f of distFiles) if (!b.has(f)) problems.push(`extra in ui-dist: ${f}`);
  for (const f of fresh) {
    if (a.has(f) && !readFileSync(join(out, f)).equals(readFileSync(join(dist, f)))) problems.push(`differs: ${f}`);
  }
  if (problems.length) {
    console.error('check-dist: ui-dist is stale; run `npm run build` in ui/ and commit ui-dist');
    for (const p of problems) console.error('  ' + p);
    process.exit(1);
  }
  console.log(`check-dist: ui-dist is up to date (${fresh.length} files)`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
