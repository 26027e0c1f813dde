// Writes a .gz beside every .js/.css/.html/.svg/.json file larger than 1 KiB in the given
// directory (default ../ui-dist), so the server can send precompressed assets.
// Deterministic: gzip with no file name and mtime 0, maximum level.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, constants } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(process.argv[2] ?? join(here, '..', '..', 'ui-dist'));
const EXT = /\.(js|css|html|svg|json)$/;
const MIN = 1024;

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

let count = 0;
let raw = 0;
let gz = 0;
for (const file of walk(root)) {
  if (!EXT.test(file)) continue;
  const data = readFileSync(file);
  if (data.length <= MIN) continue;
  const z = gzipSync(data, { level: constants.Z_BEST_COMPRESSION });
  // bytes 4..7 are MTIME (already 0 from zlib), byte 9 is OS: pin it so every platform agrees
  z[9] = 3;
  writeFileSync(file + '.gz', z);
  count += 1;
  raw += data.length;
  gz += z.length;
}
console.log(`precompress: ${count} files, ${(raw / 1024).toFixed(1)} KiB -> ${(gz / 1024).toFixed(1)} KiB gzip in ${root}`);
