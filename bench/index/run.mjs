// bench/index: N × 512 synthetic clustered float16 embeddings → import time, ANN build time, query p50/p99 and
// recall@10 against exact search, in one run.
// Usage: node bench/index/run.mjs [--count 1000000] [--dim 512] [--index-type auto|flat|ivf_pq]
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, root } from '../download/common.mjs';

const { buildIndex, openIndex } = await import(join(root, 'dist/index/index.js'));
const { writeNpy } = await import(join(root, 'dist/io/npy.js'));
const { openParquetWriter } = await import(join(root, 'dist/io/parquet-write.js'));

const count = Number(arg('count', 1_000_000));
const dim = Number(arg('dim', 512));
const perPartition = 100_000;
const indexType = arg('index-type', 'auto');

let seed = 42;
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296) * 2 - 1;
const centres = Array.from({ length: 256 }, () => Float32Array.from({ length: dim }, rand));

function* rows(start, end) {
  for (let i = start; i < end; i++) {
    const c = centres[i % centres.length];
    const v = new Float32Array(dim);
    let norm = 0;
    for (let d = 0; d < dim; d++) {
      v[d] = c[d] + 0.6 * rand();
      norm += v[d] * v[d];
    }
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
    const w = await openParquetWriter(join(emb, 'metadata', `metadata_${name}.parquet`), [{ name: 'url', type: 'STRING' }, { name: 'cluster', type: 'INT64' }], { rowGroupSize: 10_000 });
    for (let i = start; i < end; i++) await w.writeRow({ url: `https://example.com/${i}.jpg`, cluster: i % centres.length });
    await w.close();
  }
  console.log(`bench/index: ${count} × ${dim} float16 embeddings generated in ${((performance.now() - t) / 1000).toFixed(1)} s`);

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
  console.log(`import: ${(total - ann).toFixed(1)} s (${Math.round(count / (total - ann))} rows/s); ANN (${info.ann.type}) build + recall measurement: ${ann.toFixed(1)} s`);
  console.log(`ann: ${JSON.stringify(info.ann)}; recall@10 measured at build: ${info.recall_at_10.toFixed(3)}`);

  const index = await openIndex(join(dir, 'idx'));
  const queries = [...rows(count, count + 200)];
  const times = [];
  for (const q of queries) {
    const s = performance.now();
    await index.search({ vector: q, k: 10 });
    times.push(performance.now() - s);
  }
  times.sort((a, b) => a - b);
  console.log(`query p50 ${times[100].toFixed(1)} ms, p99 ${times[197].toFixed(1)} ms (200 queries, k=10; target p50 ≤ 10 ms)`);
  index.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}
