// Part 2: time to the first sample, cold, against a 1 M-row index.
//
// The index: ROWS × DIM synthetic float16 embeddings (a 16-dimensional latent space, see latentVectors), urls on
// the bench image server at a fixed port, imported with `clipstream index` (IVF-PQ, chosen automatically above 30 k rows) and
// cached under ~/.cache/clipstream-bench/stream/ so reruns skip the build. Measured: a fresh
// `clipstream stream SPEC --output -` from spawn until the first sample's last tar member (`.state`) has arrived,
// several times (the page cache is warm after the first: "cold" is a new process, not a cold disk). The breakdown
// is measured apart, each piece in its own fresh process, so it adds up only roughly:
//   process start  node + the modules of the stream path, compile cache on
//   plan           openPlan in a fresh node: to its first block (what the stream waits for), to the whole plan
//   first download the first candidate fetched + resized alone, against the same server
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fate } from '../download/fate.mjs';
import {
  cachedIndex,
  cli,
  embeddingSpec,
  indexWithCli,
  mb,
  noise,
  normalise,
  root,
  startImageServer,
  tarWalker,
  timed,
  writeEmbeddingFolder,
} from './common.mjs';

/**
 * CLIP-like synthetic embeddings: points of a 16-dimensional latent space (each coordinate a sum of 3 uniforms)
 * mapped into DIM dimensions by a fixed random basis, plus a little isotropic noise, normalised. No discrete
 * clusters (tight equidistant clusters make PQ unable to rank neighbours, and the recall calibration then opens every
 * IVF partition: a worst case, not a typical index); on this data the calibration settles on nprobes 50, refine 20
 * (measured at 100 k rows).
 */
const LATENT = 16;

function latentVectors(dim) {
  const r0 = noise(42);
  const basis = Array.from({ length: LATENT }, () => Float32Array.from({ length: dim }, r0));
  return (i, out) => {
    const r = noise(i * 2654435761 + 99);
    for (let d = 0; d < dim; d++) out[d] = 0.02 * r();
    for (let k = 0; k < LATENT; k++) {
      const z = r() + r() + r();
      const b = basis[k];
      for (let d = 0; d < dim; d++) out[d] += z * b[d];
    }
    normalise(out);
  };
}

export async function ensureTtfsIndex({ rows, dim, port, rebuild = false, indexType = 'auto' }) {
  // indexType ivf_hnsw_sq: the same rows under IVF-HNSW-SQ, cached apart (time to first sample 4.3 s, see README).
  return cachedIndex(
    `ttfs-latent${LATENT}-${rows}x${dim}-port${port}${indexType === 'auto' ? '' : `-${indexType}`}`,
    async (emb, index) => {
      console.log(`   building the ${rows} × ${dim} index once (cached for reruns) …`);
      const t = performance.now();
      await writeEmbeddingFolder(emb, {
        rows,
        dim,
        urlOf: (i) => `http://127.0.0.1:${port}/img/${i}.jpg`,
        vectorInto: latentVectors(dim),
      });
      const generated = (performance.now() - t) / 1000;
      const run = await indexWithCli(emb, index, indexType);
      console.log(`   generated in ${generated.toFixed(0)} s, \`clipstream index\` in ${run.seconds.toFixed(0)} s`);
      return { rows, dim, port, generate_seconds: generated, index_seconds: run.seconds };
    },
    { rebuild },
  );
}

export async function ttfs({
  rows = 1_000_000,
  dim = 512,
  port = 47611,
  count = 10_000,
  minSimilarity = -1,
  trials = 3,
  breakdownTrials = 1,
  rebuild = false,
  latency = true,
  indexType = 'auto',
} = {}) {
  console.log(
    `\n== time to first sample: fresh \`clipstream stream SPEC --output -\`, ${rows} × ${dim} index, one embedding query (count ${count}, min_similarity ${minSimilarity})`,
  );
  const index = await ensureTtfsIndex({ rows, dim, port, rebuild, indexType });
  if (!index.built)
    console.log(
      `   index from the cache (${index.dir}; built in ${Math.round(index.seconds)} s on ${index.created.slice(0, 10)})`,
    );
  const server = await startImageServer({ port, latency });
  const dir = await mkdtemp(join(tmpdir(), 'clipstream-bench-ttfs-'));
  try {
    // A query like the rows: a point of the same latent space that is not a row.
    const query = new Float32Array(dim);
    latentVectors(dim)(rows + 1, query);
    const spec = join(dir, 'spec.json');
    await writeFile(spec, JSON.stringify(embeddingSpec({ index: index.dir, embedding: query, count, minSimilarity })));

    const firsts = [];
    for (let i = 0; i < trials; i++) firsts.push(await firstSample(spec));
    // The multi-rank recipe: `clipstream plan` once, then every rank streams the plan (no search at start).
    const planDir = join(dir, 'plan');
    const planned = await timed(process.execPath, [cli, 'plan', spec, '--output', planDir]);
    if (planned.code !== 0) throw new Error(`clipstream plan failed:\n${planned.output}`);
    const fromPlan = [];
    for (let i = 0; i < trials; i++) fromPlan.push(await firstSample(planDir));
    // Process start: node and the modules a stream loads (from a spec: all of them), compile cache on as in the CLI.
    const modules = [
      'dist/cli/stream.js',
      'dist/select/plan-file.js',
      'dist/select/plan.js',
      'dist/stream/engine.js',
      'dist/stream/api.js',
      'dist/stream/tar-writer.js',
    ];
    const load = `(await import('node:module')).enableCompileCache(); ${modules.map((m) => `await import(${JSON.stringify(join(root, m))});`).join(' ')}`;
    const startup = [];
    for (let i = 0; i < trials; i++)
      startup.push((await timed(process.execPath, ['--input-type=module', '-e', load])).seconds);
    const plans = [];
    for (let i = 0; i < breakdownTrials; i++) plans.push(await planInFreshProcess(spec));
    const plan = plans.at(-1);
    const firstUrl = plan.firstUrl;
    const first = fate(Number(/\/img\/(\d+)\.jpg/.exec(firstUrl)?.[1]));
    const download = await firstDownloadAlone(firstUrl);

    const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const ms = (s) => `${Math.round(s * 1000)} ms`;
    console.log(
      `   plan: ${plan.planned} candidates planned, ${plan.available}${plan.availableMore ? '+' : ''} rows available; first candidate ${firstUrl.replace(/^.*\/img/, '/img')} (server: ${first.kind}${first.ms ? ` ${first.ms} ms` : ''}${first.status ? ` ${first.status}` : ''})`,
    );
    console.log('   breakdown (each part apart, in its own fresh process; median):');
    console.log(`     process start (node + the stream path's modules) ${ms(med(startup))}`);
    console.log(
      `     plan, first block (what a stream waits for) ${ms(med(plans.map((p) => p.first)))}; whole plan ${ms(med(plans.map((p) => p.total)))} (the long search alone: read spec + open index ${ms(med(plans.map((p) => p.open)))}, search ${ms(med(plans.map((p) => p.search)))})`,
    );
    console.log(`     first download + resize, alone         ${ms(download)}`);
    console.log(
      `   memory of the stream process at its first sample: VmRSS ${mb(med(firsts.map((f) => f.rssKb)))} (median), peak (VmHWM) ${mb(Math.max(...firsts.map((f) => f.hwmKb)))}`,
    );
    console.log(
      `   time to first sample, each trial: ${firsts.map((f) => ms(f.seconds)).join(', ')} (first byte of the tar at ${firsts.map((f) => ms(f.firstByte)).join(', ')})`,
    );
    console.log(
      `   from a plan folder (\`clipstream plan\` took ${ms(planned.seconds)} once), each trial: ${fromPlan.map((f) => ms(f.seconds)).join(', ')}`,
    );
    const best = Math.min(...firsts.map((f) => f.seconds));
    console.log(
      `time to first sample: ${ms(med(firsts.map((f) => f.seconds)))} median, ${ms(best)} best (target ≤ 1000 ms); from a plan ${ms(med(fromPlan.map((f) => f.seconds)))} median`,
    );
    return { firsts, fromPlan, startup, plans, download };
  } finally {
    server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Spawns `clipstream stream SPEC --output -`; resolves when the first sample's `.state` member is complete. */
function firstSample(spec) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(process.execPath, [cli, 'stream', spec, '--output', '-'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let firstByte;
    let done = false;
    const walk = tarWalker((name) => {
      if (done || !name.endsWith('.state')) return;
      done = true;
      const seconds = (performance.now() - start) / 1000;
      // Memory the process needed to get here (plan resolution against the index included).
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      child.kill('SIGTERM');
      child.once('close', () => resolve({ seconds, firstByte, hwmKb, rssKb }));
    });
    child.stdout.on('data', (chunk) => {
      firstByte ??= (performance.now() - start) / 1000;
      if (!done) walk(chunk);
    });
    child.once('close', (code) => {
      if (!done) reject(new Error(`stream exited with ${code} before its first sample:\n${stderr}`));
    });
  });
}

/**
 * Plan resolution in fresh node processes (compile cache on, as the CLI has it): one times openPlan until the first
 * block (what a stream waits for) and until the whole plan, another the index calls of the long search apart (open
 * the index, the search for all the candidates).
 */
async function planInFreshProcess(spec) {
  const whole = `
    (await import('node:module')).enableCompileCache();
    const { readSpec } = await import(${JSON.stringify(join(root, 'dist/select/spec.js'))});
    const { openPlan } = await import(${JSON.stringify(join(root, 'dist/select/plan.js'))});
    const t = performance.now();
    const plan = await openPlan(await readSpec(${JSON.stringify(spec)}));
    const first = (performance.now() - t) / 1000;
    const firstUrl = plan.candidates[0][0].url;
    await plan.pending;
    process.stdout.write(JSON.stringify({ first, total: (performance.now() - t) / 1000, planned: plan.header.queries[0].planned,
      available: plan.header.queries[0].available, availableMore: plan.header.queries[0].available_more, firstUrl }));
  `;
  const parts = `
    const { openIndex } = await import(${JSON.stringify(join(root, 'dist/index/index.js'))});
    const { readSpec } = await import(${JSON.stringify(join(root, 'dist/select/index.js'))});
    let t = performance.now();
    const spec = await readSpec(${JSON.stringify(spec)});
    const index = await openIndex(spec.index);
    const open = performance.now() - t;
    const q = spec.queries[0];
    let n = 0;
    for (const x of q.embedding) n += x * x;
    const vector = Float32Array.from(q.embedding, (x) => x / Math.sqrt(n));
    const keep = Math.ceil(q.count * spec.oversample);
    t = performance.now();
    await index.search({ vector, minSimilarity: q.min_similarity, maxResults: keep + Math.ceil(keep * 0.25) + 16, dedupUrls: true });
    const search = performance.now() - t;
    index.close();
    process.stdout.write(JSON.stringify({ open: open / 1000, search: search / 1000 }));
  `;
  const run = async (script) => {
    const r = await timed(process.execPath, ['--input-type=module', '-e', script], { cwd: root });
    if (r.code !== 0) throw new Error(`plan timing failed:\n${r.output}`);
    return JSON.parse(r.output);
  };
  return { ...(await run(whole)), ...(await run(parts)) };
}

/** One fetch + resize of `url` with the stream's own code (fetcher, image options), in this process. */
async function firstDownloadAlone(url) {
  const { createFetcherFor, fetchCandidate } = await import(join(root, 'dist/stream/candidate.js'));
  const { imageOptionsOfSpec: imageOptionsOf } = await import(join(root, 'dist/image/index.js'));
  const { defaultImageSlots } = await import(join(root, 'dist/sample/fetch-image.js'));
  const { StreamStats } = await import(join(root, 'dist/stream/stats.js'));
  const { specSchema } = await import(join(root, 'dist/select/spec.js'));
  const spec = specSchema.parse({
    index: 'x',
    queries: [{ name: 'q', embedding: [1], count: 1 }],
    fetch: { allow_private_networks: true },
  });
  const fetcher = createFetcherFor(spec.fetch);
  const ctx = { fetcher, image: imageOptionsOf(spec.image), imageSlots: defaultImageSlots(), cache: null };
  // Warm this process's sharp and undici first: a fresh stream process pays that in "process start".
  const warm = Array.from({ length: 100 }, (_, n) => n).find((n) => fate(n).kind === 'ok' && fate(n).ms < 100);
  await fetchCandidate(url.replace(/\/img\/\d+/, `/img/${warm}`), ctx, new StreamStats());
  const t = performance.now();
  const outcome = await fetchCandidate(url, ctx, new StreamStats());
  const seconds = (performance.now() - t) / 1000;
  await fetcher.close();
  if (!outcome.ok) throw new Error(`the first candidate failed alone: ${outcome.reason}`);
  return seconds;
}
