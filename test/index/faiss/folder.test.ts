import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openNpy } from '../../../src/io/npy.js';
import { float32Below, openFaissBackend } from '../../../src/index/faiss/backend.js';
import { openFaissFolder } from '../../../src/index/faiss/folder.js';
import { faissFolderInfo } from '../../../src/index/faiss/index.js';
import { serveFolder, type RangeServer } from '../../helpers/range-server.js';
import { tempDir } from '../../helpers/tmp.js';
import { answers, faissFixtures, FIXTURE_TIMEOUT_MS } from './fixtures.js';

let dir: string;
let queries: Float32Array;
beforeAll(async () => {
  dir = await faissFixtures();
  const npy = await openNpy(join(dir, 'queries.npy'));
  queries = await npy.readRows(0, npy.header.rowCount);
  await npy.close();
}, FIXTURE_TIMEOUT_MS);

let server: RangeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const q0 = () => queries.slice(0, 64);

describe('index folders', () => {
  it('autofaiss folder: image.index + image.json + parquet metadata, aligned; parameters from the infos JSON', async () => {
    const folder = await openFaissFolder(join(dir, 'folders/autofaiss'));
    try {
      expect(folder.aligned).toBe(true);
      expect(folder.infos).toMatchObject({
        index_key: 'OPQ16_64,IVF256_HNSW32,PQ16x8',
        index_param: 'nprobe=16,efSearch=32,ht=2048',
      });
      expect(folder.paramsFrom).toBe('infos');
      expect(folder.index.info).toMatchObject({
        type: 'LT64_64,IVF256_HNSW32,PQ16x8',
        nprobe: 16,
        efSearch: 32,
        pqSubQuantizers: 16,
        ntotal: 12_000,
      });
      expect(folder.metadata!.rows).toBe(12_000);
    } finally {
      await folder.close();
    }
  });

  it('on-disk folder (image.index/ + arrow metadata) wins over its index-parts/; parameters overridden by options', async () => {
    const folder = await openFaissFolder(join(dir, 'folders/ondisk'), { nprobe: 32, efSearch: 64 });
    try {
      expect(folder.index.info).toMatchObject({ lists: 'ondisk', nprobe: 32, efSearch: 64 });
      expect(folder.paramsFrom).toBe('options');
      expect(folder.metadata!.files.map((f) => f.format)).toEqual(['arrow', 'arrow']);
      const expected = await answers(dir, 'ondisk');
      const [result] = await folder.index.search(q0(), 10);
      expect(result!.ids).toEqual(expected.override!.ids[0]); // faiss with nprobe=32,efSearch=64
    } finally {
      await folder.close();
    }
  });

  it('a misaligned folder (metadata one row short) is refused, naming both counts; allowMisaligned opens it and says why', async () => {
    const err = await openFaissFolder(join(dir, 'folders/misaligned')).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'EMBEDDINGS_MISALIGNED',
      message: expect.stringMatching(
        /the metadata has 11999 rows \(2 files, .*metadata_0\.parquet … .*metadata_1\.parquet\) but the index has 12000 vectors/,
      ),
    });
    const folder = await openFaissFolder(join(dir, 'folders/misaligned'), { allowMisaligned: true });
    expect(folder.aligned).toBe(false);
    expect(folder.misalignment).toMatch(/11999 rows/);
    expect(folder.index.info.files).toHaveLength(3); // index-parts/00..02
    await folder.close();
  });

  it('over HTTP: the folder found by its known names (image.index/populated.index, metadata/0_en.arrow, 1_multi.arrow)', async () => {
    server = await serveFolder(join(dir, 'folders'));
    const folder = await openFaissFolder(`${server.base}/ondisk`);
    try {
      expect(folder.index.info.lists).toBe('ondisk');
      expect(folder.metadata!.files.map((f) => f.name.split('/').at(-1))).toEqual(['0_en.arrow', '1_multi.arrow']);
      expect(folder.aligned).toBe(true);
    } finally {
      await folder.close();
    }
    const parts = await openFaissFolder(`${server.base}/misaligned`, { allowMisaligned: true });
    expect(parts.index.info.files).toHaveLength(3);
    expect(parts.metadata!.files).toHaveLength(2);
    await parts.close();
  });

  it('as a SearchBackend: top-k with metadata, min similarity (at the threshold included), dedup, getByIds', async () => {
    const backend = await openFaissBackend(join(dir, 'folders/ondisk'));
    try {
      const expected = await answers(dir, 'ondisk');
      const top = await backend.search({ vector: q0(), k: 10 });
      expect(top.map((r) => r.id)).toEqual(expected.top10.ids[0]);
      expect(top[0]).toMatchObject({
        url: `https://img.example/${top[0]!.id}.jpg`,
        caption: `caption of row ${top[0]!.id}`,
      });
      const threshold = top[4]!.similarity; // exactly a result's similarity: it must be kept
      const above = await backend.search({ vector: q0(), minSimilarity: threshold });
      expect(above.map((r) => r.id)).toEqual(top.slice(0, 5).map((r) => r.id));
      expect(above.truncated).toBe(false);
      const capped = await backend.search({ vector: q0(), minSimilarity: threshold, maxResults: 3 });
      expect(capped).toHaveLength(3);
      expect(capped.truncated).toBe(true);
      const dedup = await backend.search({ vector: q0(), k: 10, nearDuplicate: -1 }); // every pair is "near": one kept
      expect(dedup.map((r) => r.id)).toEqual([top[0]!.id]);
      expect(await backend.getByIds([5, 11_999, 12_000])).toEqual([
        { id: 5, metadata: { url: 'https://img.example/5.jpg', caption: 'caption of row 5', row: 5, width: 6 } },
        {
          id: 11_999,
          metadata: {
            url: 'https://img.example/11999.jpg',
            caption: 'caption of row 11999',
            row: 11_999,
            width: (11_999 % 997) + 1,
          },
        },
      ]);
      await expect(backend.search({ vector: q0(), where: 'width > 3' })).rejects.toMatchObject({
        code: 'QUERY_INVALID',
      });
      await expect(backend.search({ vector: q0().subarray(0, 10) })).rejects.toMatchObject({
        code: 'QUERY_INVALID',
        message: expect.stringMatching(/10 dimensions/),
      });
    } finally {
      backend.close();
    }
  });

  it('index info: type, sizes, parameters, metadata files and rows, alignment', async () => {
    const info = await faissFolderInfo(join(dir, 'folders/misaligned'));
    expect(info).toMatchObject({
      type: 'LT64_64,IVF256_HNSW32,PQ16x8',
      d: 64,
      ntotal: 12_000,
      metric: 'inner_product',
      nlist: 256,
      pqSubQuantizers: 16,
      nprobe: 16,
      efSearch: 32,
      paramsFrom: 'index file',
      lists: 'inline',
      aligned: false,
      metadata: { format: 'parquet', rows: 11_999, columns: ['url', 'caption', 'row', 'width'] },
    });
    expect(info.metadata!.files.map((f) => f.rows)).toEqual([6000, 5999]);
    expect(info.files.map((f) => f.name.split('/').at(-1))).toEqual(['00.index', '01.index', '02.index']);
    expect(info.totalBytesOnDisk).toBe(info.bytesOnDisk + info.metadata!.files.reduce((s, f) => s + f.bytes, 0));
    expect(info.residentBytes).toBeGreaterThan(256 * 64 * 4 + 64 * 256 * 4); // centroids + PQ codebooks at least
    expect(info.residentBytes).toBeLessThan(info.bytesOnDisk / 2);
  });

  /** A folder whose image.index is the fixture index `name` (no metadata). */
  async function backendOf(name: string) {
    const folder = join(await tempDir(), name);
    await mkdir(folder);
    await symlink(join(dir, 'indexes', `${name}.index`), join(folder, 'image.index'));
    return openFaissBackend(folder);
  }

  it.each(['flat_ip', 'hnsw_ip'])(
    '"more like this" on %s: vectorsOf(ids) gives what faiss reconstructs, unknown ids left out',
    async (name) => {
      const backend = await backendOf(name);
      try {
        const faiss = (await answers(dir, name)).search_and_reconstruct as { ids: number[][]; vectors: number[][][] };
        const ids = faiss.ids[0]!;
        const got = await backend.vectorsOf!([...ids, 1_000_000, -1]);
        expect([...got.keys()]).toEqual(ids);
        ids.forEach((id, i) => {
          const v = got.get(id)!;
          faiss.vectors[0]![i]!.forEach((x, j) => expect(v[j]).toBeCloseTo(x, 6));
        });
      } finally {
        backend.close();
      }
    },
  );

  it('"more like this" through an IDMap: by the mapped id (row i of IDMap,Flat has id 7i + 5), a stored id only', async () => {
    const [flat, idmap] = [await backendOf('flat_ip'), await backendOf('idmap_flat_ip')];
    try {
      const rows = await flat.vectorsOf!([1714, 2584]);
      const got = await idmap.vectorsOf!([7 * 1714 + 5, 1714, 7 * 2584 + 5]);
      expect([...got.entries()]).toEqual([
        [7 * 1714 + 5, rows.get(1714)],
        [7 * 2584 + 5, rows.get(2584)],
      ]);
    } finally {
      flat.close();
      idmap.close();
    }
  });

  it.each(['ivfflat_ip', 'ivfpq_ip'])(
    '"more like this" on %s: the rows a search returned, decoded as faiss reconstructs them; any other row refused, saying why',
    async (name) => {
      const backend = await backendOf(name);
      try {
        await expect(backend.vectorsOf!([5])).rejects.toMatchObject({
          code: 'QUERY_INVALID',
          message: expect.stringMatching(/IVF.*cannot give row 5's embedding .*no id → list map/),
          hint: expect.stringMatching(/pick a row of the results|image URL/),
        });
        const faiss = (await answers(dir, name)).search_and_reconstruct as { ids: number[][]; vectors: number[][][] };
        const results = await backend.search({ vector: q0(), k: 5 });
        const got = await backend.vectorsOf!(results.map((r) => r.id));
        expect([...got.keys()]).toEqual(results.map((r) => r.id));
        let compared = 0;
        for (const r of results) {
          const v = got.get(r.id)!;
          // the decoded vector scores what the search scored (IP: ⟨query, vector⟩ = similarity)
          expect(Math.abs(v.reduce((sum, x, j) => sum + x * q0()[j]!, 0) - r.similarity)).toBeLessThan(1e-4);
          const j = faiss.ids[0]!.indexOf(r.id);
          if (j < 0) continue; // faiss's recorded search used other settings
          compared++;
          faiss.vectors[0]![j]!.forEach((x, c) => expect(Math.abs(v[c]! - x)).toBeLessThan(1e-5));
        }
        expect(compared).toBeGreaterThan(0);
      } finally {
        backend.close();
      }
    },
  );

  it('float32Below: the largest float32 under x', () => {
    for (const x of [0.28, 0.5, 1, -0.3, 0, 1e-40]) {
      const r = float32Below(x);
      expect(r).toBeLessThan(x);
      expect(Math.fround(r)).toBe(r);
      const next = new Float32Array([r]);
      const bits = new Int32Array(next.buffer);
      bits[0] = bits[0]! + (r >= 0 ? 1 : -1);
      expect(next[0]!).toBeGreaterThanOrEqual(x);
    }
  });
});
