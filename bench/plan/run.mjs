// bench/plan (issue 16): a plan of ≥ 20 M candidates — a wide threshold on a large IVF-Flat index of small vectors
// (built once by bench/plan/build.py with faiss-cpu into ~/.cache/clipstream/bench-plan/; Arrow metadata whose urls
// point at the bench/stream image server on a fixed port) — in three fresh processes, RSS read from /proc every 200 ms:
//   A  `clipstream plan SPEC --output DIR`: wall time, RSS over the run (flat: it must not grow with the candidates)
//   B  `clipstream stream DIR --output -` from that plan folder: time to the first sample, RSS over --samples samples
//   C  `clipstream stream SPEC --output -`: time to the first sample (the first block) and RSS while the long search
//      writes every candidate to the plan's temporary folder in the background, samples streaming all along
// --heap MB runs them with V8's heap capped (--max-old-space-size): a plan that held its candidates would not fit;
// --phases picks which of A, B, C run (B needs A).
// Usage: node bench/plan/run.mjs [--count 20000000] [--dim 8] [--port 47613] [--samples 20000] [--concurrency 64]
//        [--heap 256] [--phases ABC]
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, cli, embeddingSpec, rssSampler, root, startImageServer, tarWalker } from '../stream/common.mjs';

const count = Number(arg('count', 20_000_000));
const dim = Number(arg('dim', 8));
const port = Number(arg('port', 47613));
const samples = Number(arg('samples', 20_000));
const concurrency = Number(arg('concurrency', 64));
const heap = arg('heap', '');
const phases = String(arg('phases', 'ABC'));
const nodeArgs = heap ? [`--max-old-space-size=${Number(heap)}`] : [];

const mbOf = (kb) => Math.round(kb / 1024);
const seconds = (ms) => (ms / 1000).toFixed(1);

async function ensureIndex() {
  const dir = join(homedir(), '.cache/clipstream/bench-plan', `${count}x${dim}-port${port}`);
  try {
    await readFile(join(dir, 'ready.json'));
    return dir;
  } catch {
    /* build it */
  }
  const python = execFileSync('bash', [join(root, 'scripts/faiss-env.sh')], { encoding: 'utf8' }).trim();
  console.log(`building ${count} × ${dim} IVF-Flat + metadata once into ${dir} …`);
  const t = performance.now();
  execFileSync(python, [join(root, 'bench/plan/build.py'), dir, String(count), String(dim), String(port)], {
    stdio: 'inherit',
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
  });
  console.log(`   built in ${seconds(performance.now() - t)} s`);
  return dir;
}

/** RSS samples summarised at 0 %, 25 %, 50 %, 75 % and 100 % of the run, and the peak. */
function profile(all) {
  const rss = all.filter((s) => s.rssKb > 0); // a sample taken as the process exited reads 0
  if (rss.length === 0) return 'no samples';
  const at = (f) => mbOf(rss[Math.min(rss.length - 1, Math.floor(f * (rss.length - 1)))].rssKb);
  const peak = mbOf(Math.max(...rss.map((s) => s.hwmKb)));
  return `RSS ${[0, 0.25, 0.5, 0.75, 1].map(at).join(' → ')} MB (at 0/25/50/75/100 % of the run), peak ${peak} MB`;
}

async function folderBytes(dir) {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}

/** A: the plan written to a folder. */
async function planToFolder(specPath, out) {
  const t = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, cli, 'plan', specPath, '--output', out], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d.toString()).slice(-4000)));
  child.stdout.on('data', (d) => (stdout += d.toString()));
  const sampler = rssSampler(child.pid, () => 0, 200);
  const code = await new Promise((r) => child.on('close', r));
  console.log(`   clipstream plan's summary: ${stdout.trim().split('\n').at(-1)}`);
  const rss = await sampler.stop();
  if (code !== 0) throw new Error(`clipstream plan failed (${code}):\n${stderr}`);
  const header = JSON.parse(await readFile(join(out, 'plan.json'), 'utf8'));
  const planned = header.queries[0].planned;
  const ms = performance.now() - t;
  console.log(
    `A  plan: ${planned} candidates in ${seconds(ms)} s (${Math.round(planned / (ms / 1000))} /s), ` +
      `${(await folderBytes(out)) / 1e9} GB on disk; ${profile(rss)}`,
  );
  return planned;
}

/**
 * Streams `source` (a plan folder or a spec) to stdout and reads the tar: time to the first sample, samples/s,
 * RSS. Stops after `limit` samples, or when `until()` says so (checked every second) once `limit` is reached.
 */
async function streamOf(source, { limit, env = {}, until = async () => true, label }) {
  const t = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, cli, 'stream', source, '--output', '-'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let delivered = 0;
  let first;
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d.toString()).slice(-4000)));
  const walk = tarWalker((name) => {
    if (!name.endsWith('.state')) return;
    delivered++;
    first ??= performance.now() - t;
  });
  child.stdout.on('data', walk);
  const sampler = rssSampler(child.pid, () => delivered, 200);
  const closed = new Promise((r) => child.on('close', r));
  for (;;) {
    const done = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(r, 1000))]);
    if (done === 'closed') break;
    if (delivered >= limit && (await until())) break;
  }
  child.kill('SIGTERM');
  await closed;
  const rss = await sampler.stop();
  const ms = performance.now() - t;
  if (first === undefined) throw new Error(`${label}: no sample:\n${stderr}`);
  console.log(
    `${label}: first sample after ${seconds(first)} s; ${delivered} samples in ${seconds(ms)} s ` +
      `(${Math.round(delivered / ((ms - first) / 1000))} /s after the first); ${profile(rss)}`,
  );
}

/**
 * C: the plan's temporary folder lives under TMPDIR=work/tmp; its positions file reaches 12 bytes a candidate once
 * the long search has written its block (published at once when complete).
 */
async function streamWhilePlanning(specPath, work, planned) {
  const tmp = join(work, 'tmp');
  await mkdir(tmp);
  const written = async () => {
    const [folder] = (await readdir(tmp)).filter((n) => n.startsWith('clipstream-plan-'));
    if (!folder) return 0;
    return (await stat(join(tmp, folder, 'positions-0000.bin')).catch(() => ({ size: 0 }))).size / 12;
  };
  await streamOf(specPath, {
    limit: samples,
    env: { TMPDIR: tmp },
    until: async () => (await written()) >= planned,
    label: 'C  stream from the spec, while the long search runs',
  });
  console.log(`   (C ran until the long search had written all ${planned} candidates)`);
}

const index = await ensureIndex();
const server = await startImageServer({ port, tiny: true, latency: false });
const work = await mkdtemp(join(tmpdir(), 'clipstream-bench-plan-'));
try {
  const spec = embeddingSpec({
    index,
    embedding: [1, ...Array(dim - 1).fill(0)],
    count: Math.ceil(count / 3),
    image: { size: 64 },
    fetch: { concurrency, timeout: 10, retries: 0 },
  });
  const specPath = join(work, 'spec.json');
  await writeFile(specPath, JSON.stringify(spec));
  console.log(
    `index: ${count} × ${dim} (${index}); spec: one query, count ${spec.queries[0].count} × oversample 3` +
      (heap ? `; V8 heap capped at ${heap} MB` : ''),
  );
  const planned = phases.includes('A') ? await planToFolder(specPath, join(work, 'plan')) : count;
  if (phases.includes('B'))
    await streamOf(join(work, 'plan'), { limit: samples, label: 'B  stream from the plan folder' });
  await rm(join(work, 'plan'), { recursive: true, force: true });
  if (phases.includes('C')) await streamWhilePlanning(specPath, work, planned);
} finally {
  server.stop();
  await rm(work, { recursive: true, force: true });
}
