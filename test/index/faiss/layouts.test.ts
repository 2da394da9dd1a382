import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openNpy } from '../../../src/io/npy.js';
import { openByteSource } from '../../../src/io/byte-source.js';
import { Cursor } from '../../../src/index/faiss/cursor.js';
import { Parser, type IvfNode } from '../../../src/index/faiss/format.js';
import { openFaissIndex, openFaissParts } from '../../../src/index/faiss/open.js';
import { unwrap } from '../../../src/index/faiss/searcher.js';
import { serveFolder, type RangeServer } from '../../helpers/range-server.js';
import { tempDir } from '../../helpers/tmp.js';
import { answers, faissFixtures, FIXTURE_TIMEOUT_MS, type FaissAnswers } from './fixtures.js';
import { expectSameTopK } from './compare.js';

let dir: string;
let queries: Float32Array;
let ondisk: FaissAnswers;
const parts = ['00', '01', '02'].map((p) => `folders/ondisk/index-parts/${p}.index`);

beforeAll(async () => {
  dir = await faissFixtures();
  const npy = await openNpy(join(dir, 'queries.npy'));
  queries = await npy.readRows(0, npy.header.rowCount);
  await npy.close();
  ondisk = await answers(dir, 'ondisk');
}, FIXTURE_TIMEOUT_MS);

let server: RangeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function expectOndiskAnswers(results: { ids: number[]; distances: number[] }[]) {
  results.forEach((r, q) => expectSameTopK(r, ondisk.top10.ids[q]!, ondisk.top10.distances[q]!, `query ${q}`));
}

describe('index layouts', () => {
  it('index-parts/NN.index searched as one index = the merged on-disk index faiss searched', async () => {
    const index = await openFaissParts(parts.map((p) => join(dir, p)));
    try {
      expect(index.info).toMatchObject({
        ntotal: ondisk.ntotal,
        nlist: 256,
        nprobe: 16,
        efSearch: 32,
        lists: 'inline',
      });
      expect(index.info.files).toHaveLength(3);
      expectOndiskAnswers(await index.search(queries, 10));
    } finally {
      await index.close();
    }
  });

  it('refuses parts trained apart, naming both files', async () => {
    const err = await openFaissParts([join(dir, parts[0]!), join(dir, 'folders/autofaiss/image.index')]).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: 'INDEX_INVALID',
      message: expect.stringMatching(/autofaiss\/image\.index was trained apart from .*00\.index/),
    });
  });

  it('populated.index finds merged_index.ivfdata next to it, though it was merged elsewhere', async () => {
    const moved = await tempDir();
    await mkdir(join(moved, 'image.index'));
    for (const f of ['populated.index', 'merged_index.ivfdata'])
      await copyFile(join(dir, 'folders/ondisk/image.index', f), join(moved, 'image.index', f));
    const index = await openFaissIndex(join(moved, 'image.index/populated.index'));
    expect(index.info.lists).toBe('ondisk');
    expectOndiskAnswers(await index.search(queries, 10));
    await index.close();
    // Without its data file: a clear error naming both.
    await writeFile(join(moved, 'image.index', 'merged_index.ivfdata'), new Uint8Array(100));
    const err = await openFaissIndex(join(moved, 'image.index/populated.index')).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'INDEX_INVALID',
      message: expect.stringMatching(
        /truncated: .*merged_index\.ivfdata is 100 bytes but .*populated\.index records 288000/,
      ),
    });
  });

  it('over HTTP: opening reads no list; a query reads exactly its probed lists; a repeat reads nothing', async () => {
    server = await serveFolder(join(dir, 'folders/ondisk'));
    const index = await openFaissIndex(`${server.base}/image.index/populated.index`);
    try {
      const populated = (await readFile(join(dir, 'folders/ondisk/image.index/populated.index'))).length;
      expect(server.sent.get('/image.index/populated.index')).toBeLessThanOrEqual(populated + 1); // + the 1-byte size probe
      expect(server.sent.get('/image.index/merged_index.ivfdata') ?? 0).toBeLessThanOrEqual(1); // the size probe only
      const before = server.totalSent();
      const [result] = await index.search(queries.subarray(0, 64), 10);
      expectSameTopK(result!, ondisk.top10.ids[0]!, ondisk.top10.distances[0]!, 'query 0 over HTTP');
      const read = server.totalSent() - before;
      const lists = await listBytes(join(dir, 'folders/ondisk/image.index/populated.index'));
      const probed = ondisk.probes![0]!.reduce((sum, l) => sum + lists[l]!, 0);
      expect(read).toBe(probed); // each probed list once, whole, nothing else
      expect(read / 288_000).toBeLessThan(0.1);
      const again = server.totalSent();
      await index.search(queries.subarray(0, 64), 10);
      expect(server.totalSent()).toBe(again);
    } finally {
      await index.close();
    }
  });

  it('over HTTP, a single-file index and its range search give faiss answers', async () => {
    server = await serveFolder(join(dir, 'folders/autofaiss'));
    const index = await openFaissIndex(`${server.base}/image.index`);
    try {
      const expected = await answers(dir, 'autofaiss');
      const results = await index.search(queries, 10);
      results.forEach((r, q) => expectSameTopK(r, expected.top10.ids[q]!, expected.top10.distances[q]!, `query ${q}`));
    } finally {
      await index.close();
    }
  });
});

/** Bytes of each list (codes + ids) in an on-disk index. */
async function listBytes(path: string): Promise<number[]> {
  const { source } = await openByteSource(path);
  const node = await new Parser(new Cursor(source)).index();
  await source.close();
  const ivf = unwrap(node).core as IvfNode;
  return Array.from(ivf.lists.sizes, (n) => n * (ivf.codeSize + 8));
}
