import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openNpy } from '../../../src/io/npy.js';
import { kernelsEnabled, MatrixKernel, PqScanKernel } from '../../../src/index/faiss/kernels.js';
import { dot, l2sq } from '../../../src/index/faiss/vectors.js';
import { openFaissIndex } from '../../../src/index/faiss/open.js';
import { faissFixtures, FIXTURE_TIMEOUT_MS } from './fixtures.js';

/** A deterministic generator (no Math.random: a failure must replay). */
function random(seed: number) {
  let s = seed;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
}

/** What ivf.ts's JS loop computes for one code: double sums per byte lane, (s0 + s1) + (s2 + s3), then float32. */
function reference(table: Float32Array, codes: Uint8Array, i: number, M: number, dis0: number): number {
  const s = [0, 0, 0, 0];
  for (let m = 0; m < M; m++) s[m % 4]! += table[m * 256 + codes[i * M + m]!]!;
  return Math.fround(dis0 + Math.fround(s[0]! + s[1]! + (s[2]! + s[3]!)));
}

describe('WebAssembly PQ scan kernel', () => {
  it('runs on this Node (else every search takes the JS fallback unnoticed)', () => {
    expect(kernelsEnabled()).toBe(true);
  });

  it.each([
    [4, true],
    [8, false],
    [64, true],
    [64, false],
  ])(
    'M = %i (ip %s): the JS loop’s float32 scores and the codes past the threshold; memory growth, table swaps',
    (M, ip) => {
      const rand = random(M);
      const kernel = new PqScanKernel(M, ip);
      const tables = [0, 1].map(() => Float32Array.from({ length: M * 256 }, () => rand() * 2 - 1));
      // 3 000 codes of 64 bytes outgrow the 2 pages the module starts with
      for (const n of [1, 7, 3000, 5]) {
        for (const table of tables) {
          const codes = Uint8Array.from({ length: n * M }, () => Math.floor(rand() * 256));
          const dis0 = Math.fround(rand());
          const want = Array.from({ length: n }, (_, i) => reference(table, codes, i, M, dis0));
          const threshold = want[Math.floor(n / 3)]!; // some codes beat it, some tie with it, the rest do not
          const count = kernel.scan(table, codes, n, dis0, threshold);
          expect(Array.from(kernel.scores.subarray(0, n))).toEqual(want);
          const past = want.flatMap((v, i) => ((ip ? v > threshold : v < threshold) ? [i] : []));
          expect(Array.from(kernel.hits.subarray(0, count))).toEqual(past);
        }
      }
    },
  );

  it('a table whose values change in place is reloaded after forget()', () => {
    const kernel = new PqScanKernel(4, true);
    const table = new Float32Array(4 * 256).fill(1);
    const codes = new Uint8Array([0, 1, 2, 3]);
    kernel.scan(table, codes, 1, 0, -Infinity);
    expect(kernel.scores[0]).toBe(4);
    table.fill(2);
    kernel.forget(table);
    kernel.scan(table, codes, 1, 0, -Infinity);
    expect(kernel.scores[0]).toBe(8);
  });
});

describe('WebAssembly dot products and squared distances', () => {
  it.each([1, 2, 3, 4, 5, 7, 8, 64, 447, 448])('d = %i: vectors.ts’s dot and l2sq, bit for bit', (d) => {
    const rand = random(d);
    const rows = 40;
    const matrix = Float32Array.from({ length: rows * d }, () => rand() - 0.5);
    const q = Float32Array.from({ length: 2 * d }, () => rand() - 0.5);
    const kernel = MatrixKernel.of(matrix, 2 * d, rows)!;
    kernel.setQuery(q);
    const ips = Array.from(kernel.ipRows(d, 0, rows, d)); // the query's second half against every row
    for (let r = 0; r < rows; r++) {
      expect(kernel.ip(0, r * d, d)).toBe(dot(q, 0, matrix, r * d, d));
      expect(kernel.l2(d, r * d, d)).toBe(l2sq(q, d, matrix, r * d, d));
      expect(ips[r]).toBe(dot(q, d, matrix, r * d, d));
    }
  });
});

describe('searches with the WebAssembly kernels and with the JS fallback', () => {
  let dir: string;
  let queries: Float32Array;
  beforeAll(async () => {
    dir = await faissFixtures();
    const npy = await openNpy(join(dir, 'queries.npy'));
    queries = await npy.readRows(0, npy.header.rowCount);
    await npy.close();
  }, FIXTURE_TIMEOUT_MS);
  afterEach(() => {
    delete process.env.CLIPSTREAM_FAISS_KERNELS;
  });

  const INDEXES = [
    'indexes/hnsw_ip.index',
    'indexes/hnsw_l2.index',
    'indexes/ivfpq_ip.index',
    'indexes/ivfpq_l2.index',
    'indexes/opq_ivfpq_ip.index',
    'indexes/opq_ivfhnswpq_l2.index',
    'folders/autofaiss/image.index',
    'folders/wide/image.index',
  ];

  it.each(INDEXES)('%s: identical ids and distances, top-300 and range', async (file) => {
    const answers = [];
    for (const mode of ['js', 'wasm']) {
      if (mode === 'js') process.env.CLIPSTREAM_FAISS_KERNELS = 'js';
      else delete process.env.CLIPSTREAM_FAISS_KERNELS;
      const index = await openFaissIndex(join(dir, file));
      try {
        const top = await index.search(queries, 300);
        const d = index.info.d;
        const q0 = queries.subarray(0, d);
        const radius = top[0]!.distances[150]!;
        const range = await index.rangeSearch(q0, radius, { maxResults: 100_000 });
        answers.push({ top, range: { ids: range.ids, distances: range.distances } });
      } finally {
        await index.close();
      }
    }
    expect(answers[0]!.top.flatMap((r) => r.ids).length).toBeGreaterThan(0);
    expect(answers[1]).toEqual(answers[0]);
  });

  it('searches running at once (each awaiting list reads) get the answers they get one at a time', async () => {
    // The PQ kernel holds one table in its memory: interleaved searches must each scan with their own.
    const file = join(dir, 'folders/autofaiss/image.index');
    const d = 64;
    const qs = Array.from({ length: 8 }, (_, i) => queries.subarray(i * d, (i + 1) * d));
    const one = await openFaissIndex(file);
    const alone = [];
    for (const q of qs) alone.push(await one.rangeSearch(q, 0.2, { maxResults: 100_000 }));
    await one.close();
    const many = await openFaissIndex(file, { cacheBytes: 0 }); // every list read from the file: searches interleave
    try {
      const together = await Promise.all(qs.map((q) => many.rangeSearch(q, 0.2, { maxResults: 100_000 })));
      expect(together.map((r) => r.ids.length).reduce((a, b) => a + b)).toBeGreaterThan(0);
      expect(together).toEqual(alone);
    } finally {
      await many.close();
    }
  });
});
