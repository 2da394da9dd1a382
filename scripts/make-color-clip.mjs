// Writes color-CLIP, the tiny generated CLIP-format test model , to a folder:
//   node scripts/make-color-clip.mjs <out-dir> [--dim 64] [--image-size 32]
// It runs the built library (dist/clip/color-clip.js): build first with `npm run build` (scripts/env.sh does it).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const usage = 'usage: node scripts/make-color-clip.mjs <out-dir> [--dim 64] [--image-size 32]';
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { dim: { type: 'string' }, 'image-size': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
});
if (values.help || positionals.length !== 1) {
  console.error(usage);
  process.exit(values.help ? 0 : 2);
}

const built = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'clip', 'color-clip.js');
if (!existsSync(built)) {
  console.error(`make-color-clip: ${built} is missing; run \`npm run build\` first`);
  process.exit(1);
}
const { writeColorClip } = await import(pathToFileURL(built).href);
const opts = {};
if (values.dim !== undefined) opts.dim = Number(values.dim);
if (values['image-size'] !== undefined) opts.imageSize = Number(values['image-size']);
try {
  const dir = await writeColorClip(resolve(positionals[0]), opts);
  console.log(dir);
} catch (err) {
  console.error(`make-color-clip: ${err.message}`);
  process.exit(2);
}
