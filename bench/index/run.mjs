// bench/index (issue 3): N × 512 synthetic clustered float16 embeddings → import time, ANN build time, query p50/p99
// and recall@10 against exact search, in one run; then faiss IVF-PQ on the same vectors when faiss-cpu installs
// from PyPI into a private venv (~/.cache/clipstream-bench/venv-faiss).
// Usage: node bench/index/run.mjs [--count 1000000] [--dim 512] [--index-type ivf_hnsw_sq|auto|flat|ivf_pq]
//                                 [--data structured|isotropic] [--no-faiss]
//   structured (default): 256 cluster centres, each row = centre + a point of a 16-dimensional latent space shared by
//     all clusters + a little isotropic noise (neighbours within a cluster are near for a reason, as in CLIP space);
//   isotropic: centre + 0.6 × uniform noise in every dimension: within a cluster every row is about equally far from
//     every other (cosines 0.74 ± 0.01), so the true top 10 differ in the third decimal: a worst case for any
//     quantized index, not a model of real embeddings.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, root } from '../download/common.mjs';

const { buildIndex, openIndex } = await import(join(root, 'dist/index/index.js'));
const { writeNpy } = await import(join(root, 'dist/io/npy.js'));
const { openParquetWriter } = await import(join(root, 'dist/io/parquet-write.js'));

const count = Number(arg('count', 1_000_000));
const dim = Number(arg('dim', 512));
const perPartition = 100_000;
// The serving index by default: auto (IVF-PQ from 30 k rows) is measured with --index-type auto.
const indexType = arg('index-type', 'ivf_hnsw_sq');
const data = arg('data', 'structured');
const LATENT = 16;
const QUERIES = 200;

let seed = 42;
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296) * 2 - 1;
const centres = Array.from({ length: 256 }, () => Float32Array.from({ length: dim }, rand));
const basis = Array.from({ length: LATENT }, () => Float32Array.from({ length: dim }, rand));

function* rows(start, end) {
  for (let i = start; i < end; i++) {
    const c = centres[i % centres.length];
    const v = new Float32Array(dim);
    if (data === 'isotropic') {
      for (let d = 0; d < dim; d++) v[d] = c[d] + 0.6 * rand();
    } else {
      for (let d = 0; d < dim; d++) v[d] = c[d] + 0.05 * rand();
      for (const b of basis) {
        const z = 0.3 * (rand() + rand() + rand());
        for (let d = 0; d < dim; d++) v[d] += z * b[d];
      }
    }
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += v[d] * v[d];
    norm = Math.sqrt(norm);
    for (let d = 0; d < dim; d++) v[d] /= norm;
    yield v;
  }
}

const dir = await mkdtemp(join(tmpdir(), 'clipstream-bench-index-'));
try {
  const emb = join(dir, 'emb');
  await mkdir(join(emb, 'img_emb'), { recursive: true });
  await mkdir(join(emb, 'metadata'), { recursive: true });
  let t = performance.now();
  for (let p = 0, start = 0; start < count; p++, start += perPartition) {
    const end = Math.min(count, start + perPartition);
    const name = String(p).padStart(3, '0');
    await writeNpy(join(emb, 'img_emb', `img_emb_${name}.npy`), rows(start, end), dim, 'float16');
    const w = await openParquetWriter(
      join(emb, 'metadata', `metadata_${name}.parquet`),
      [
        { name: 'url', type: 'STRING' },
        { name: 'cluster', type: 'INT64' },
      ],
      { rowGroupSize: 10_000 },
    );
    for (let i = start; i < end; i++)
      await w.writeRow({ url: `https://example.com/${i}.jpg`, cluster: i % centres.length });
    await w.close();
  }
  // Queries: new points of the same distribution (not rows of the index).
  const queries = [...rows(count, count + QUERIES)];
  await writeNpy(join(dir, 'queries.npy'), queries, dim, 'float32');
  console.log(
    `bench/index: ${count} × ${dim} float16 embeddings (${data}) generated in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );

  t = performance.now();
  let annStart = 0;
  const info = await buildIndex({
    embeddings: emb,
    output: join(dir, 'idx'),
    indexType,
    onProgress: (done, total) => {
      if (done === total) annStart = performance.now();
    },
  });
  const total = (performance.now() - t) / 1000;
  const ann = (performance.now() - annStart) / 1000;
  console.log(
    `import: ${(total - ann).toFixed(1)} s (${Math.round(count / (total - ann))} rows/s); ANN (${info.ann.type}) build + recall calibration: ${ann.toFixed(1)} s`,
  );
  console.log(
    `ann: ${JSON.stringify(info.ann)}; recall@10 at calibration (stored rows as queries): ${info.recall_at_10.toFixed(3)}`,
  );

  const index = await openIndex(join(dir, 'idx'));
  const times = [];
  const found = [];
  for (const q of queries) {
    const s = performance.now();
    found.push(await index.search({ vector: q, k: 10 }));
    times.push(performance.now() - s);
  }
  index.close();
  times.sort((a, b) => a - b);
  const recall = await exactRecall(join(dir, 'idx'), queries, found);
  console.log(
    `query p50 ${times[QUERIES / 2].toFixed(1)} ms, p99 ${times[Math.floor(QUERIES * 0.99) - 1].toFixed(1)} ms (${QUERIES} new queries, k=10), recall@10 ${recall.toFixed(3)}; target p50 ≤ 10 ms at recall@10 ≥ 0.95`,
  );

  if (!process.argv.includes('--no-faiss')) faiss(emb, join(dir, 'queries.npy'), info);
} finally {
  await rm(dir, { recursive: true, force: true });
}

/** recall@10 of `found` against an exact scan of the index for each query. */
async function exactRecall(idxDir, queries, found) {
  const lancedb = await import('@lancedb/lancedb');
  const table = await (await lancedb.connect(idxDir)).openTable('samples');
  let hits = 0;
  for (const [i, q] of queries.entries()) {
    const exact = await table
      .vectorSearch(q)
      .distanceType('dot')
      .bypassVectorIndex()
      .limit(10)
      .select(['id', '_distance'])
      .toArray();
    const truth = new Set(exact.map((r) => Number(r.id)));
    hits += found[i].filter((r) => truth.has(r.id)).length;
  }
  table.close();
  return hits / (queries.length * 10);
}

function faiss(emb, queriesNpy, info) {
  const venv = join(homedir(), '.cache/clipstream-bench/venv-faiss');
  const python = join(venv, 'bin/python');
  if (!existsSync(python)) {
    const made = spawnSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
    const pip =
      made.status === 0 &&
      spawnSync(join(venv, 'bin/pip'), ['install', '-q', 'faiss-cpu', 'numpy'], { stdio: 'inherit' });
    if (!pip || pip.status !== 0) {
      console.log('faiss: faiss-cpu did not install from PyPI; comparison skipped');
      return;
    }
  }
  const partitions = info.ann.type === 'ivf_pq' ? info.ann.num_partitions : Math.round(Math.sqrt(count));
  const subVectors = info.ann.type === 'ivf_pq' ? info.ann.num_sub_vectors : dim / 16;
  const script = fileURLToPath(new URL('./faiss_ivfpq.py', import.meta.url));
  spawnSync(python, [script, emb, queriesNpy, String(partitions), String(subVectors)], { stdio: 'inherit' });
}
