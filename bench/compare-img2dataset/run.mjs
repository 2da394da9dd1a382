// bench/compare-img2dataset: img2dataset (from PyPI, in a private venv) and clipstream on the same url list, the
// same local server and the same options; prints ours ÷ theirs in samples/s, and each one's CPU per sample.
// Usage: node bench/compare-img2dataset/run.mjs [--count 5000] [--threads 128] [--processes 2] [--rounds 2]
//        [--hostile-rounds 1] [--clean-only]
// Each round's ratio is of two neighbouring runs, in alternating order (theirs then ours, ours then theirs …), and
// the median is reported: this host's speed drifts by tens of % over minutes, more than the difference measured.
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
const rounds = Number(arg('rounds', 2));
const hostileRounds = Number(arg('hostile-rounds', 1));

const venv = join(homedir(), '.cache/clipstream-bench/venv-img2dataset');
const img2dataset = join(venv, 'bin/img2dataset');
if (!existsSync(img2dataset)) {
  console.log(`installing img2dataset into ${venv} (once) …`);
  execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
  execFileSync(join(venv, 'bin/pip'), ['install', '-q', 'img2dataset'], { stdio: 'inherit' });
}

/**
 * Runs a command under bash and reads its CPU seconds (user + system of it and every process it waited for:
 * img2dataset's are child processes) from bash's `times`.
 */
async function timedWithChildren(cmd, args, opts) {
  // (LC_NUMERIC=C: `times` prints the locale's decimal separator)
  const script = '"$@"; code=$?; LC_NUMERIC=C; times >&2; exit $code';
  const run = await timed('bash', ['-c', script, 'bash', cmd, ...args], { ...opts, rssOfChild: true });
  const clock = [...run.stderr.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  // `times` prints the shell's user and system time, then its children's: the last two figures
  const cpuSeconds = clock.length >= 2 ? clock.at(-2) + clock.at(-1) : NaN;
  return { ...run, cpuSeconds };
}

async function successes(folder) {
  let ok = 0;
  for (const f of (await readdir(folder)).filter((f) => f.endsWith('_stats.json'))) {
    ok += JSON.parse(await readFile(join(folder, f), 'utf8')).successes;
  }
  return ok;
}

async function compare(hostile, roundCount) {
  const server = await startBenchServer({ hostile });
  const dir = await mkdtemp(join(tmpdir(), 'clipstream-compare-'));
  try {
    const list = join(dir, 'urls.txt');
    await writeFile(list, Array.from({ length: count }, (_, n) => `${server.url}/img/${n}.jpg`).join('\n') + '\n');
    const common = { size: '256', mode: 'center_crop' };
    console.log(
      `\n${hostile ? 'hostile web (+0.5% bodies trickling at 1 KB/s)' : 'clean web'}: ${count} urls, ${processes} processes × ${threads} threads, ${shardSize} per shard, webdataset, 256 px ${common.mode}, ${roundCount} round(s)`,
    );

    const ratios = [];
    for (let round = 1; round <= roundCount; round++) {
      const runTheirs = async () => {
        const out = join(dir, `theirs-${round}`);
        const run = await timedWithChildren(
          img2dataset,
          [
            `--url_list=${list}`,
            `--output_folder=${out}`,
            '--output_format=webdataset',
            `--image_size=${common.size}`,
            `--resize_mode=${common.mode}`,
            `--processes_count=${processes}`,
            `--thread_count=${threads}`,
            `--number_sample_per_shard=${shardSize}`,
            '--timeout=10',
            '--retries=0',
            // (fresh folders; img2dataset 1.47's overwrite mode deletes its own _tmp shards and never starts)
          ],
          { env: { ...process.env, NO_ALBUMENTATIONS_UPDATE: '1' } },
        );
        if (run.code !== 0) throw new Error(`img2dataset failed:\n${run.output.slice(-2000)}`);
        const ok = await successes(out);
        await rm(out, { recursive: true, force: true });
        return { run, ok };
      };
      const runOurs = async () => {
        const out = join(dir, `ours-${round}`);
        const run = await timedWithChildren(process.execPath, [
          join(root, 'dist/cli/main.js'),
          'download',
          '--url-list',
          list,
          '--output-folder',
          out,
          '--output-format',
          'webdataset',
          '--image-size',
          common.size,
          '--resize-mode',
          common.mode,
          '--processes-count',
          processes,
          '--thread-count',
          threads,
          '--number-sample-per-shard',
          shardSize,
          '--timeout',
          '10',
          '--retries',
          '0',
          '--allow-private-networks',
          '--per-host-concurrency',
          threads,
          '--progress-interval',
          '10',
        ]);
        if (run.code !== 0) throw new Error(`clipstream failed:\n${run.output.slice(-2000)}`);
        const ok = await successes(out);
        await rm(out, { recursive: true, force: true });
        return { run, ok };
      };
      // theirs, ours, then ours, theirs …: a steady drift of the host's speed favours neither
      let theirsRound, oursRound;
      if (round % 2 === 1) {
        theirsRound = await runTheirs();
        oursRound = await runOurs();
      } else {
        oursRound = await runOurs();
        theirsRound = await runTheirs();
      }
      const { run: theirs, ok: theirsOk } = theirsRound;
      const { run: ours, ok: oursOk } = oursRound;

      const theirsRate = count / theirs.seconds;
      const oursRate = count / ours.seconds;
      const cpu = (run, ok) => `${((run.cpuSeconds * 1000) / ok).toFixed(2)} ms CPU per success`;
      console.log(`round ${round}:`);
      console.log(
        `  img2dataset: ${theirsOk}/${count} ok in ${theirs.seconds.toFixed(1)} s = ${theirsRate.toFixed(1)} samples/s, ${cpu(theirs, theirsOk)}, peak RSS ${Math.round(theirs.peakKb / 1024)} MB (main process)`,
      );
      console.log(
        `  clipstream:  ${oursOk}/${count} ok in ${ours.seconds.toFixed(1)} s = ${oursRate.toFixed(1)} samples/s, ${cpu(ours, oursOk)}, peak RSS ${Math.round(ours.peakKb / 1024)} MB`,
      );
      ratios.push(oursRate / theirsRate);
    }
    const sorted = [...ratios].sort((a, b) => a - b);
    const mid = sorted.length / 2;
    const median = sorted.length % 2 === 1 ? sorted[Math.floor(mid)] : (sorted[mid - 1] + sorted[mid]) / 2;
    console.log(
      `ratio ours / img2dataset: ${median.toFixed(2)} (median of rounds ${ratios.map((r) => r.toFixed(2)).join(', ')}; target ≥ 1.5)`,
    );
  } finally {
    server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await compare(false, rounds);
if (!process.argv.includes('--clean-only')) await compare(true, hostileRounds);
