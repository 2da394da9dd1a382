import { open as openFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync, zstdCompressSync } from 'node:zlib';
import { parquetWriteBuffer, type ColumnSource } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import type { UrlRow } from '../../src/core/types.js';
import { asyncBufferFromHandle, naturalValue, openParquet } from '../../src/io/parquet-read.js';
import { inspectUrlList, readUrlList, type UrlListOptions } from '../../src/io/url-list.js';
import { tempDir } from '../helpers/tmp.js';

type Codec = 'UNCOMPRESSED' | 'SNAPPY' | 'GZIP' | 'ZSTD' | 'BROTLI';

/** `n` rows starting at `first`: url, caption, an INT64 width, an INT32 height, a string license and a bulky column. */
function parquetBytes(first: number, n: number, options: { rowGroupSize?: number; codec?: Codec } = {}): Buffer {
  const ids = Array.from({ length: n }, (_, i) => first + i);
  const columnData: ColumnSource[] = [
    { name: 'id', data: ids, type: 'INT32' },
    { name: 'url', data: ids.map((i) => (i % 7 === 3 ? null : `http://img.example/${i}.jpg`)), type: 'STRING' },
    { name: 'caption', data: ids.map((i) => (i % 5 === 4 ? null : `caption ${i}`)), type: 'STRING' },
    { name: 'width', data: ids.map((i) => BigInt(i * 10)), type: 'INT64' },
    { name: 'license', data: ids.map((i) => `lic-${i % 3}`), type: 'STRING' },
    { name: 'unused', data: ids.map((i) => `${'z'.repeat(50)}${i}`), type: 'STRING' },
  ];
  const compressors = {
    GZIP: (b: Uint8Array) => new Uint8Array(gzipSync(b)),
    ZSTD: (b: Uint8Array) => new Uint8Array(zstdCompressSync(b)),
    BROTLI: (b: Uint8Array) => new Uint8Array(brotliCompressSync(b)),
  };
  return Buffer.from(
    parquetWriteBuffer({
      columnData,
      codec: options.codec ?? 'SNAPPY',
      compressors,
      ...(options.rowGroupSize ? { rowGroupSize: options.rowGroupSize } : {}),
    }),
  );
}

function expectedRow(i: number, index = i): UrlRow {
  return {
    index,
    url: i % 7 === 3 ? '' : `http://img.example/${i}.jpg`,
    caption: i % 5 === 4 ? null : `caption ${i}`,
    columns: { width: i * 10, license: `lic-${i % 3}` },
  };
}

const opts = (urlList: string, extra: Partial<UrlListOptions> = {}): UrlListOptions => ({
  urlList,
  inputFormat: 'parquet',
  urlCol: 'url',
  captionCol: 'caption',
  additionalColumns: ['width', 'license'],
  ...extra,
});

async function collect(it: AsyncIterable<UrlRow>): Promise<UrlRow[]> {
  const out: UrlRow[] = [];
  for await (const row of it) out.push(row);
  return out;
}

describe('parquet url lists', () => {
  it('reads several row groups in order; null urls stay rows (url ""), INT64 becomes number', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.parquet');
    await writeFile(file, parquetBytes(0, 35, { rowGroupSize: 10 }));
    const pq = await openParquet(file);
    try {
      expect(pq.rowGroups).toEqual([
        { start: 0, rows: 10 },
        { start: 10, rows: 10 },
        { start: 20, rows: 10 },
        { start: 30, rows: 5 },
      ]);
      expect(pq.columns).toEqual(['id', 'url', 'caption', 'width', 'license', 'unused']);
      // Only the requested columns are decoded.
      const rows = await pq.readRows(['url', 'width'], 10, 20);
      expect(rows).toHaveLength(10);
      expect(Object.keys(rows[0]!)).toEqual(['url', 'width']);
    } finally {
      await pq.close();
    }
    expect(await collect(readUrlList(opts(file)))).toEqual(Array.from({ length: 35 }, (_, i) => expectedRow(i)));
  });

  it.each(['UNCOMPRESSED', 'SNAPPY', 'GZIP', 'ZSTD', 'BROTLI'] as const)('reads %s pages', async (codec) => {
    const dir = await tempDir();
    const file = join(dir, 'a.parquet');
    await writeFile(file, parquetBytes(0, 50, { codec, rowGroupSize: 20 }));
    const pq = await openParquet(file);
    expect(pq.metadata.row_groups[0]!.columns[1]!.meta_data!.codec).toBe(codec);
    await pq.close();
    expect(await collect(readUrlList(opts(file)))).toEqual(Array.from({ length: 50 }, (_, i) => expectedRow(i)));
  });

  it('startIndex skips whole row groups without reading them (a damaged skipped group does not matter)', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.parquet');
    await writeFile(file, parquetBytes(0, 35, { rowGroupSize: 10, codec: 'UNCOMPRESSED' }));
    // Damage every column chunk of row group 0.
    const pq = await openParquet(file);
    const chunks = pq.metadata.row_groups[0]!.columns.map((c) => c.meta_data!);
    await pq.close();
    const bytes = await readFile(file);
    for (const m of chunks) {
      const start = Number(m.dictionary_page_offset ?? m.data_page_offset);
      bytes.fill(0xee, start, start + Number(m.total_compressed_size));
    }
    await writeFile(file, bytes);

    const err = await collect(readUrlList(opts(file))).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string },
    );
    expect(err?.code).toBe('INPUT_MALFORMED');
    expect(err?.message).toContain(file);

    for (const start of [10, 13, 20, 29, 30, 34, 35, 100]) {
      const got = await collect(readUrlList(opts(file), start));
      expect(got, `start ${start}`).toEqual(
        Array.from({ length: Math.max(0, 35 - start) }, (_, k) => expectedRow(start + k)),
      );
    }
  });

  it('a folder of parquet files: sorted order, continuous index, startIndex skips whole files from their footers', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'part-00002.parquet'), parquetBytes(40, 15, { rowGroupSize: 4 }));
    await writeFile(join(dir, 'part-00000.parquet'), parquetBytes(0, 25, { rowGroupSize: 7 }));
    await writeFile(join(dir, 'part-00001.parquet'), parquetBytes(25, 15));
    expect(await inspectUrlList(opts(dir))).toHaveLength(3);
    const all = Array.from({ length: 55 }, (_, i) => expectedRow(i));
    expect(await collect(readUrlList(opts(dir)))).toEqual(all);
    for (const start of [0, 6, 7, 24, 25, 39, 40, 41, 54, 55]) {
      expect(await collect(readUrlList(opts(dir), start)), `start ${start}`).toEqual(all.slice(start));
    }
  });

  it('names the columns that exist when one is missing', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.parquet');
    await writeFile(file, parquetBytes(0, 3));
    await expect(inspectUrlList(opts(file, { urlCol: 'link' }))).rejects.toMatchObject({
      code: 'MISSING_COLUMN',
      message: `column "link" not found in ${file}; columns are: id, url, caption, width, license, unused`,
      hint: expect.stringMatching(/--url-col/),
    });
  });

  it('a truncated file or an empty file → INPUT_MALFORMED naming it', async () => {
    const dir = await tempDir();
    const truncated = join(dir, 'a.parquet');
    const bytes = parquetBytes(0, 20);
    await writeFile(truncated, bytes.subarray(0, bytes.length - 10));
    const empty = join(dir, 'b.parquet');
    await writeFile(empty, '');
    for (const file of [truncated, empty]) {
      await expect(inspectUrlList(opts(file))).rejects.toMatchObject({
        code: 'INPUT_MALFORMED',
        message: expect.stringContaining(`not a valid parquet file: ${file}`),
      });
    }
  });

  it('the file-backed AsyncBuffer reads exact slices', async () => {
    const dir = await tempDir();
    const file = join(dir, 'bytes.bin');
    await writeFile(file, Buffer.from(Array.from({ length: 100 }, (_, i) => i)));
    const handle = await openFile(file, 'r');
    try {
      const buf = asyncBufferFromHandle(handle, 100);
      expect([...new Uint8Array(await buf.slice(10, 15))]).toEqual([10, 11, 12, 13, 14]);
      expect(new Uint8Array(await buf.slice(95)).length).toBe(5);
      expect((await buf.slice(50, 50)).byteLength).toBe(0);
    } finally {
      await handle.close();
    }
  });

  it('naturalValue: safe bigints become numbers, huge ones stay bigint', () => {
    expect(naturalValue(42n)).toBe(42);
    expect(naturalValue(2n ** 60n)).toBe(2n ** 60n);
    expect(naturalValue(undefined)).toBeNull();
    expect(naturalValue('x')).toBe('x');
  });
});
