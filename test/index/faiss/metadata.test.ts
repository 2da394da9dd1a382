import { mkdir, stat } from 'node:fs/promises';
import { openParquetWriter } from '../../../src/io/parquet-write.js';
import { tempDir } from '../../helpers/tmp.js';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openMetadata, openMetadataFiles } from '../../../src/index/faiss/metadata.js';
import { serveFolder, type RangeServer } from '../../helpers/range-server.js';
import { faissFixtures, FIXTURE_TIMEOUT_MS } from './fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await faissFixtures();
}, FIXTURE_TIMEOUT_MS);

let server: RangeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** The fixture's metadata: row r has url …/r.jpg, caption "caption of row r", row r, width r % 997 + 1. */
const rowOf = (r: number) => ({
  url: `https://img.example/${r}.jpg`,
  caption: `caption of row ${r}`,
  row: r,
  width: (r % 997) + 1,
});
const IDS = [0, 1, 699, 700, 4999, 5000, 5001, 8999, 9000, 11_999, 3, 6000];

describe('metadata in place', () => {
  it('parquet folder: rows across files and row groups, in the order asked, columns_to_return', async () => {
    const meta = await openMetadata(join(dir, 'folders/autofaiss/metadata'), { columns: ['url', 'caption'] });
    try {
      expect(meta.rows).toBe(12_000);
      expect(meta.files.map((f) => [f.name.split('/').at(-1), f.start, f.rows])).toEqual([
        ['metadata_0.parquet', 0, 5000],
        ['metadata_1.parquet', 5000, 4000],
        ['metadata_2.parquet', 9000, 3000],
      ]);
      expect(meta.columns).toEqual(['url', 'caption', 'row', 'width']);
      const rows = await meta.get([...IDS, 12_000]);
      expect(rows.slice(0, -1)).toEqual(IDS.map((r) => ({ url: rowOf(r).url, caption: rowOf(r).caption })));
      expect(rows.at(-1)).toBeUndefined();
      expect(await meta.get([42], ['row', 'width'])).toEqual([{ row: 42, width: 43 }]);
      await expect(meta.get([1], ['nope'])).rejects.toMatchObject({
        code: 'MISSING_COLUMN',
        message: expect.stringMatching(/"nope".*url, caption, row, width/),
      });
    } finally {
      await meta.close();
    }
  });

  it('an int64 beyond 2^53 (a hash, a snowflake id) comes back as its exact decimal string, so results stay JSON', async () => {
    const folder = join(await tempDir(), 'metadata');
    await mkdir(folder);
    const w = await openParquetWriter(join(folder, 'metadata_0.parquet'), [
      { name: 'url', type: 'STRING' },
      { name: 'hash', type: 'INT64' },
    ]);
    await w.writeRow({ url: 'https://img.example/0.jpg', hash: 2n ** 60n + 1n });
    await w.writeRow({ url: 'https://img.example/1.jpg', hash: 7n });
    await w.close();
    const meta = await openMetadata(folder);
    try {
      const rows = await meta.get([0, 1]);
      expect(rows).toEqual([
        { url: 'https://img.example/0.jpg', hash: '1152921504606846977' },
        { url: 'https://img.example/1.jpg', hash: 7 },
      ]);
      expect(() => JSON.stringify(rows)).not.toThrow();
    } finally {
      await meta.close();
    }
  });

  it('arrow folder (0_en.arrow, 1_multi.arrow): rows through their record batch', async () => {
    const meta = await openMetadata(join(dir, 'folders/ondisk/metadata'));
    try {
      expect(meta.files.map((f) => [f.name.split('/').at(-1), f.format, f.start, f.rows])).toEqual([
        ['0_en.arrow', 'arrow', 0, 7000],
        ['1_multi.arrow', 'arrow', 7000, 5000],
      ]);
      expect(await meta.get(IDS)).toEqual(IDS.map(rowOf));
    } finally {
      await meta.close();
    }
  });

  it('over HTTP: footers at open, then only the row group / batch of the rows asked', async () => {
    server = await serveFolder(join(dir, 'folders'));
    const names = ['0_en.arrow', '1_multi.arrow'].map((f) => `${server!.base}/ondisk/metadata/${f}`);
    const meta = await openMetadataFiles(names, 'arrow', { cacheBytes: 0 });
    try {
      const opened = server.totalSent();
      expect(await meta.get([3100])).toEqual([rowOf(3100)]); // batch 2 of 5 (1 500 rows each) of 0_en.arrow
      const read = server.totalSent() - opened;
      const size = (await stat(join(dir, 'folders/ondisk/metadata/0_en.arrow'))).size;
      expect(read).toBeGreaterThan(0);
      expect(read / size).toBeLessThan(0.4); // its batch (~21 %) and the footer, not the file
      const parquet = await openMetadataFiles(
        [0, 1, 2].map((p) => `${server!.base}/autofaiss/metadata/metadata_${p}.parquet`),
        'parquet',
        { cacheBytes: 0 },
      );
      expect(await parquet.get([9001, 2])).toEqual([rowOf(9001), rowOf(2)]);
      await parquet.close();
    } finally {
      await meta.close();
    }
  });
});
