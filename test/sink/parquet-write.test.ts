import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  inferColumnType,
  inferColumnTypeOf,
  openParquetWriter,
  type ParquetColumn,
} from '../../src/io/parquet-write.js';
import { tempDir } from '../helpers/tmp.js';
import { readParquet } from './helpers.js';

const columns: ParquetColumn[] = [
  { name: 's', type: 'STRING' },
  { name: 'i32', type: 'INT32' },
  { name: 'i64', type: 'INT64' },
  { name: 'd', type: 'DOUBLE' },
  { name: 'b', type: 'BOOLEAN' },
  { name: 'bytes', type: 'BYTE_ARRAY', opaque: true },
  { name: 'j', type: 'JSON' },
];

describe('openParquetWriter', () => {
  it('writes 35 rows in row groups of 10 (4 groups) and reads them back identical, nulls in every column', async () => {
    const dir = await tempDir();
    const path = join(dir, 'a.parquet');
    const writer = await openParquetWriter(path, columns, { rowGroupSize: 10 });
    const expected: Record<string, unknown>[] = [];
    for (let r = 0; r < 35; r++) {
      const isNull = r % 7 === 3;
      const row = isNull
        ? { s: null, i32: null, i64: null, d: null, b: null, bytes: null, j: null }
        : {
            s: `row ${r} é`,
            i32: r - 17,
            i64: BigInt(r) * 10_000_000_000n,
            d: r / 4,
            b: r % 2 === 0,
            bytes: Buffer.from([r, 255 - r, 0]),
            j: { r, tags: ['x', r] },
          };
      expected.push(row);
      await writer.writeRow(row);
    }
    expect(writer.rowCount).toBe(35);
    await writer.close();

    const { rows, rowGroups, columns: schema } = await readParquet(path);
    expect(rowGroups).toEqual([10, 10, 10, 5]);
    expect(schema.map((c) => c.name)).toEqual(columns.map((c) => c.name));
    expect(schema.map((c) => c.type)).toEqual([
      'BYTE_ARRAY',
      'INT32',
      'INT64',
      'DOUBLE',
      'BOOLEAN',
      'BYTE_ARRAY',
      'BYTE_ARRAY',
    ]);
    expect(rows).toHaveLength(35);
    for (let r = 0; r < 35; r++) {
      const got = rows[r]!;
      const want = expected[r]!;
      expect(got.s).toEqual(want.s);
      expect(got.i32).toEqual(want.i32);
      expect(got.i64).toEqual(want.i64);
      expect(got.d).toEqual(want.d);
      expect(got.b).toEqual(want.b);
      expect(got.j).toEqual(want.j);
      if (want.bytes === null) expect(got.bytes).toBeNull();
      else expect(Buffer.from(got.bytes as Uint8Array)).toEqual(want.bytes);
    }
    expect(writer.mismatches).toEqual({ s: 0, i32: 0, i64: 0, d: 0, b: 0, bytes: 0, j: 0 });
  });

  it('buffers at most rowGroupSize rows: the file grows at each full row group, before close', async () => {
    const dir = await tempDir();
    const path = join(dir, 'grow.parquet');
    const writer = await openParquetWriter(path, [{ name: 'blob', type: 'BYTE_ARRAY', opaque: true }], {
      rowGroupSize: 5,
    });
    const sizes: number[] = [];
    for (let r = 0; r < 15; r++) {
      await writer.writeRow({ blob: Buffer.alloc(10_000, r) });
      sizes.push((await readFile(path)).length);
    }
    // nothing but the magic until 5 rows, then ≥ 5 × 10 kB after each group
    expect(sizes[3]).toBeLessThan(100);
    expect(sizes[4]).toBeGreaterThanOrEqual(50_000);
    expect(sizes[9]).toBeGreaterThanOrEqual(100_000);
    expect(sizes[13]).toBe(sizes[9]);
    await writer.close();
    expect((await readParquet(path)).rowGroups).toEqual([5, 5, 5]);
  });

  it('writes a valid empty file', async () => {
    const dir = await tempDir();
    const path = join(dir, 'empty.parquet');
    const writer = await openParquetWriter(path, columns);
    await writer.close();
    const { rows, columns: schema } = await readParquet(path);
    expect(rows).toEqual([]);
    expect(schema.map((c) => c.name)).toEqual(columns.map((c) => c.name));
  });

  it('converts mismatched values when exact, else writes null and counts the mismatch', async () => {
    const dir = await tempDir();
    const path = join(dir, 'mixed.parquet');
    const writer = await openParquetWriter(
      path,
      columns.filter((c) => c.name !== 'bytes'),
    );
    await writer.writeRow({ s: 12, i32: '42', i64: 7, d: 3, b: 'true', j: 'text' });
    await writer.writeRow({ s: { a: 1n }, i32: 2.5, i64: 1.5, d: 'abc', b: 1, j: [1] });
    await writer.writeRow({ s: true, i32: 2 ** 31, i64: '-9007199254740993', d: 5n, b: false, j: null });
    await writer.close();
    const { rows } = await readParquet(path);
    expect(rows[0]).toEqual({ s: '12', i32: 42, i64: 7n, d: 3, b: true, j: 'text' });
    expect(rows[1]).toEqual({ s: '{"a":1}', i32: null, i64: null, d: null, b: null, j: [1] });
    expect(rows[2]).toEqual({ s: 'true', i32: null, i64: -9007199254740993n, d: 5, b: false, j: null });
    expect(writer.mismatches).toEqual({ s: 0, i32: 2, i64: 1, d: 1, b: 1, j: 0 });
  });

  it('abort deletes the file; write after close is refused', async () => {
    const dir = await tempDir();
    const path = join(dir, 'x.parquet');
    const writer = await openParquetWriter(path, columns, { rowGroupSize: 2 });
    for (let r = 0; r < 5; r++) await writer.writeRow({ s: 'a' });
    await writer.abort();
    await writer.abort();
    expect(await readdir(dir)).toEqual([]);

    const closed = await openParquetWriter(path, columns);
    await closed.close();
    expect(() => closed.writeRow({ s: 'late' })).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });

  it('refuses a bad rowGroupSize and duplicate columns', async () => {
    const dir = await tempDir();
    await expect(openParquetWriter(join(dir, 'a'), columns, { rowGroupSize: 0 })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    await expect(
      openParquetWriter(join(dir, 'b'), [
        { name: 'a', type: 'STRING' },
        { name: 'a', type: 'INT32' },
      ]),
    ).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});

describe('column type inference', () => {
  it('infers from one value the way pyarrow reads it', () => {
    expect(inferColumnType('a')).toBe('STRING');
    expect(inferColumnType(3)).toBe('INT64');
    expect(inferColumnType(3.5)).toBe('DOUBLE');
    expect(inferColumnType(3n)).toBe('INT64');
    expect(inferColumnType(true)).toBe('BOOLEAN');
    expect(inferColumnType(Buffer.from('x'))).toBe('BYTE_ARRAY');
    expect(inferColumnType({ a: 1 })).toBe('JSON');
    expect(inferColumnType([1, 2])).toBe('JSON');
    expect(inferColumnType(new Date(0))).toBe('STRING');
    expect(inferColumnType(null)).toBe('STRING');
    expect(inferColumnType(undefined)).toBe('STRING');
  });

  it('widens over many values: ints + doubles → DOUBLE, other mixes → STRING, all null → STRING', () => {
    expect(inferColumnTypeOf([null, 1, 2])).toBe('INT64');
    expect(inferColumnTypeOf([1, 2.5, null])).toBe('DOUBLE');
    expect(inferColumnTypeOf([1n, 2.5])).toBe('DOUBLE');
    expect(inferColumnTypeOf([2n ** 60n, 2.5])).toBe('STRING');
    expect(inferColumnTypeOf([1, 'a'])).toBe('STRING');
    expect(inferColumnTypeOf([true, 1])).toBe('STRING');
    expect(inferColumnTypeOf([null, undefined])).toBe('STRING');
  });
});
