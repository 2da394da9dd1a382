// Shared by the bench/stream parts: the image server, synthetic embedding folders indexed with `clipstream index`,
// the index cache under ~/.cache/clipstream-bench/stream/, specs, RSS sampling from /proc.
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { root, timed } from '../download/common.mjs';

export { arg, root, timed } from '../download/common.mjs';

/** The CLI under test; CLIPSTREAM_BENCH_CLI points at another build (a branch's dist/cli/main.js) to compare. */
export const cli = process.env.CLIPSTREAM_BENCH_CLI ?? join(root, 'dist/cli/main.js');
export const cacheRoot = join(homedir(), '.cache/clipstream-bench/stream');

/** bench/stream/server.mjs in a child process; resolves with its base URL once it listens. */
export async function startImageServer({ port = 0, tiny = false, latency = true } = {}) {
  const script = fileURLToPath(new URL('./server.mjs', import.meta.url));
  const args = [script, '--port', String(port), ...(tiny ? ['--tiny'] : []), ...(latency ? [] : ['--no-latency'])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) =>
      reject(new Error(`bench/stream server exited with ${code} (port ${port} taken? pass --port)`)),
    );
  });
  const { port: bound, meanBytes } = JSON.parse(line);
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    meanBytes,
    pid: child.pid,
    stop: () => child.kill('SIGTERM'),
  };
}

/** xorshift32 in [-1, 1): deterministic vectors without Math.random. */
export function noise(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 4294967296) * 2 - 1;
  };
}

/**
 * A clip-retrieval embedding folder of `rows` rows: img_emb/img_emb_NNN.npy (float16) + metadata/metadata_NNN.parquet
 * with `url` (urlOf(i)) and `caption`. `vectorInto(i, out)` writes row i (normalised by the caller).
 */
export async function writeEmbeddingFolder(dir, { rows, dim, urlOf, vectorInto, perPartition = 100_000 }) {
  const { writeNpy } = await import(join(root, 'dist/io/npy.js'));
  const { openParquetWriter } = await import(join(root, 'dist/io/parquet-write.js'));
  await mkdir(join(dir, 'img_emb'), { recursive: true });
  await mkdir(join(dir, 'metadata'), { recursive: true });
  for (let p = 0, start = 0; start < rows; p++, start += perPartition) {
    const end = Math.min(rows, start + perPartition);
    const name = String(p).padStart(3, '0');
    await writeNpy(join(dir, 'img_emb', `img_emb_${name}.npy`), chunks(start, end, dim, vectorInto), dim, 'float16');
    const w = await openParquetWriter(
      join(dir, 'metadata', `metadata_${name}.parquet`),
      [
        { name: 'url', type: 'STRING' },
        { name: 'caption', type: 'STRING' },
      ],
      { rowGroupSize: 10_000 },
    );
    for (let i = start; i < end; i++) await w.writeRow({ url: urlOf(i), caption: `image ${i}` });
    await w.close();
  }
}

function* chunks(start, end, dim, vectorInto) {
  const rowsPerChunk = 1000;
  for (let i = start; i < end; i += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, end - i);
    const out = new Float32Array(n * dim);
    for (let r = 0; r < n; r++) vectorInto(i + r, out.subarray(r * dim, (r + 1) * dim));
    yield out;
  }
}

/** Normalises v in place. */
export function normalise(v) {
  let norm = 0;
  for (let d = 0; d < v.length; d++) norm += v[d] * v[d];
  norm = Math.sqrt(norm);
  for (let d = 0; d < v.length; d++) v[d] /= norm;
  return v;
}

/** Every row near e0 (cosine > 0.98 with it): one `embedding: [1, 0, …]` query at min_similarity -1 ranks them all. */
export function nearOneDirection(dim) {
  return (i, out) => {
    const r = noise(i * 2654435761 + 7);
    out[0] = 1;
    for (let d = 1; d < dim; d++) out[d] = 0.05 * r();
    normalise(out);
  };
}

/** `clipstream index` through the CLI, as a user builds one; returns wall seconds. */
export async function indexWithCli(embeddings, output, indexType = 'auto') {
  const run = await timed(process.execPath, [
    cli,
    'index',
    '--embeddings',
    embeddings,
    '--output',
    output,
    '--index-type',
    indexType,
  ]);
  if (run.code !== 0) throw new Error(`clipstream index failed:\n${run.output}`);
  return run;
}

/**
 * An index kept under ~/.cache/clipstream-bench/stream/KEY/index, built once by `build(embeddingsDir, indexDir)`;
 * `ready.json` (written last) marks it complete, so an interrupted build is redone. The embedding folder is
 * deleted afterwards (the index holds everything a spec needs). Returns { dir, built, seconds, info }.
 */
export async function cachedIndex(key, build, { rebuild = false } = {}) {
  const base = join(cacheRoot, key);
  const ready = join(base, 'ready.json');
  if (!rebuild) {
    try {
      const info = JSON.parse(await readFile(ready, 'utf8'));
      return { dir: join(base, 'index'), built: false, ...info };
    } catch {
      /* not built yet */
    }
  }
  await rm(base, { recursive: true, force: true });
  await mkdir(base, { recursive: true });
  const start = performance.now();
  const details = await build(join(base, 'embeddings'), join(base, 'index'));
  const seconds = (performance.now() - start) / 1000;
  await rm(join(base, 'embeddings'), { recursive: true, force: true });
  const info = { seconds, created: new Date().toISOString(), ...details };
  await writeFile(ready, JSON.stringify(info, null, 2) + '\n');
  return { dir: join(base, 'index'), built: true, ...info };
}

/** A spec with one `embedding:` query; `fetch` and `image` merge over the benches' settings. */
export function embeddingSpec({
  index,
  embedding,
  count,
  oversample = 3,
  minSimilarity = -1,
  image = {},
  fetch = {},
  cache = { dir: null },
}) {
  return {
    index,
    queries: [{ name: 'all', embedding: Array.from(embedding), count, min_similarity: minSimilarity }],
    oversample,
    image: { size: 256, resize_mode: 'center_crop', encode_format: 'jpg', encode_quality: 95, ...image },
    fetch: { allow_private_networks: true, ...fetch },
    cache,
  };
}

/**
 * Samples a process's VmRSS and VmHWM from /proc every `intervalMs`, tagged with `progress()` (e.g. samples so
 * far). `stop()` returns the samples.
 */
export function rssSampler(pid, progress, intervalMs = 100) {
  const samples = [];
  const read = async () => {
    try {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      samples.push({ t: performance.now(), progress: progress(), rssKb: rss, hwmKb: hwm });
    } catch {
      /* process gone */
    }
  };
  const timer = setInterval(read, intervalMs);
  return {
    samples,
    async stop() {
      clearInterval(timer);
      await read();
      return samples;
    },
  };
}

export const mb = (kb) => `${Math.round(kb / 1024)} MB`;

/**
 * Incremental tar walker for a byte stream: calls onMember(name, size) once a member's data has fully arrived.
 * Holds at most one header's bytes (members' data are skipped, not buffered). Pax headers count as members.
 */
export function tarWalker(onMember) {
  let header = Buffer.alloc(0);
  let skip = 0; // data (+ padding) bytes of the current member still to come
  let pending = null; // { name, size } waiting for its data
  return (chunk) => {
    let at = 0;
    while (at < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - at);
        skip -= n;
        at += n;
        if (skip === 0 && pending) {
          onMember(pending.name, pending.size);
          pending = null;
        }
        continue;
      }
      const n = Math.min(512 - header.length, chunk.length - at);
      header = Buffer.concat([header, chunk.subarray(at, at + n)]);
      at += n;
      if (header.length < 512) continue;
      const name = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
      const size = parseInt(header.subarray(124, 136).toString('utf8').replace(/\0.*$/s, '').trim() || '0', 8);
      header = Buffer.alloc(0);
      if (name === '') continue; // end-of-archive blocks
      skip = Math.ceil(size / 512) * 512;
      if (skip === 0) onMember(name, size);
      else pending = { name, size };
    }
  };
}
