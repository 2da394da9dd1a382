// bench/compare-img2dataset: img2dataset (from PyPI, in a private venv) and clipstream on the same url list, the
// same local server and the same options; prints ours ÷ theirs in samples/s.
// Usage: node bench/compare-img2dataset/run.mjs [--count 5000] [--threads 128] [--processes 2]
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, root, startBenchServer, timed } from '../download/common.mjs';

const count = Number(arg('count', 5000));
const threads = arg('threads', '128');
const processes = arg('processes', String(availableParallelism()));
const shardSize = arg('shard-size', '1000');

const venv = join(homedir(), '.cache/clipstream-bench/venv-img2dataset');
const img2dataset = join(venv, 'bin/img2dataset');
if (!existsSync(img2dataset)) {
  console.log(`installing img2dataset into ${venv} (once) …`);
  execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
  execFileSync(join(venv, 'bin/pip'), ['install', '-q', 'img2dataset'], { stdio: 'inherit' });
}

async function successes(folder) {
  let ok = 0;
  for (const f of (await readdir(folder)).filter((f) => f.endsWith('_stats.json'))) {
    ok += JSON.parse(await readFile(join(folder, f), 'utf8')).successes;
  }
  return ok;
}

async function compare(hostile) {
  const server = await startBenchServer({ hostile });
  const dir = await mkdtemp(join(tmpdir(), 'clipstream-compare-'));
  try {
    const list = join(dir, 'urls.txt');
    await writeFile(list, Array.from({ length: count }, (_, n) => `${server.url}/img/${n}.jpg`).join('\n') + '\n');
    const common = { size: '256', mode: 'center_crop' };
    console.log(`\n${hostile ? 'hostile web (+0.5% bodies trickling at 1 KB/s)' : 'clean web'}: ${count} urls, ${processes} processes × ${threads} threads, ${shardSize} per shard, webdataset, 256 px ${common.mode}`);

    const theirsOut = join(dir, 'theirs');
    const theirs = await timed(img2dataset, [
      `--url_list=${list}`, `--output_folder=${theirsOut}`, '--output_format=webdataset', `--image_size=${common.size}`,
      `--resize_mode=${common.mode}`, `--processes_count=${processes}`, `--thread_count=${threads}`,
      `--number_sample_per_shard=${shardSize}`, '--timeout=10', '--retries=0',
      // (fresh folders; img2dataset 1.47's overwrite mode deletes its own _tmp shards and never starts)
    ], { env: { ...process.env, NO_ALBUMENTATIONS_UPDATE: '1' } });
    if (theirs.code !== 0) throw new Error(`img2dataset failed:\n${theirs.output.slice(-2000)}`);
    const theirsOk = await successes(theirsOut);

    const oursOut = join(dir, 'ours');
    const ours = await timed(process.execPath, [
      join(root, 'dist/cli/main.js'), 'download', '--url-list', list, '--output-folder', oursOut,
      '--output-format', 'webdataset', '--image-size', common.size, '--resize-mode', common.mode,
      '--processes-count', processes, '--thread-count', threads, '--number-sample-per-shard', shardSize,
      '--timeout', '10', '--retries', '0',
      '--allow-private-networks', '--per-host-concurrency', threads, '--progress-interval', '10',
    ]);
    if (ours.code !== 0) throw new Error(`clipstream failed:\n${ours.output.slice(-2000)}`);
    const oursOk = await successes(oursOut);

    const theirsRate = count / theirs.seconds;
    const oursRate = count / ours.seconds;
    console.log(`img2dataset: ${theirsOk}/${count} ok in ${theirs.seconds.toFixed(1)} s = ${theirsRate.toFixed(1)} samples/s, peak RSS ${Math.round(theirs.peakKb / 1024)} MB (main process)`);
    console.log(`clipstream:  ${oursOk}/${count} ok in ${ours.seconds.toFixed(1)} s = ${oursRate.toFixed(1)} samples/s, peak RSS ${Math.round(ours.peakKb / 1024)} MB`);
    console.log(`ratio ours / img2dataset: ${(oursRate / theirsRate).toFixed(2)} (target ≥ 1.5)`);
  } finally {
    server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await compare(false);
if (!process.argv.includes('--clean-only')) await compare(true);
