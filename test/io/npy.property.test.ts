import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeNpy, encodeNpyHeader, openNpy, parseNpyHeader } from '../../src/io/npy.js';
import { damaged, outcomeOf, runs } from '../helpers/property.js';
import { tempDir } from '../helpers/tmp.js';

// For any bytes, the npy reader gives rows or refuses the file with a ClipstreamError: never another exception,
// never a hang, never an allocation sized by a header the file does not back.

/** Most rows read at once: what the index build reads per batch is bounded the same way. */
const READ_ROWS = 64;

const validNpy = fc
  .record({
    rows: fc.nat(12),
    dim: fc.integer({ min: 1, max: 9 }),
    dtype: fc.constantFrom('float16' as const, 'float32' as const),
    seed: fc.integer(),
  })
  .map(({ rows, dim, dtype, seed }) =>
    encodeNpy(
      Float32Array.from({ length: rows * dim }, (_, i) => Math.sin(seed + i)),
      [rows, dim],
      dtype,
    ),
  );

/** A header dict of numpy's shape with odd values: a valid preamble carrying whatever text. */
const headerText = fc
  .record({
    descr: fc.constantFrom("'<f4'", "'<f2'", "'>f4'", "'<i8'", "'|u1'", "'<f8'", '"<f4"', "'<c8'", '3', "''"),
    fortran: fc.constantFrom('False', 'True', '0', "'x'"),
    shape: fc.oneof(
      fc
        .array(fc.oneof(fc.nat(20), fc.constantFrom(2 ** 31, 2 ** 53, 2 ** 64, -1)), { maxLength: 4 })
        .map((s) => `(${s.join(', ')}${s.length === 1 ? ',' : ''})`),
      fc.constantFrom('()', '(3,', '[2, 2]', '(1e3, 2)', '(0x10, 1)', '((1,), 2)'),
    ),
    tail: fc.constantFrom('', ', }', ', "extra": 1}', '}', '}}', "'"),
  })
  .map(
    ({ descr, fortran, shape, tail }) => `{'descr': ${descr}, 'fortran_order': ${fortran}, 'shape': ${shape}${tail}`,
  );

function withHeader(text: string, data: Uint8Array, version: number): Uint8Array {
  const lengthBytes = version === 1 ? 2 : 4;
  const body = new TextEncoder().encode(text);
  const out = new Uint8Array(6 + 2 + lengthBytes + body.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, body.length, true);
  else view.setUint32(8, body.length, true);
  out.set(body, 8 + lengthBytes);
  out.set(data, 8 + lengthBytes + body.length);
  return out;
}

const anyNpy = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  validNpy,
  validNpy.chain(damaged),
  fc
    .tuple(headerText, fc.uint8Array({ maxLength: 200 }), fc.constantFrom(1, 2, 3))
    .map(([t, d, v]) => withHeader(t, d, v)),
  // a valid header whose length field lies
  fc.tuple(validNpy, fc.constantFrom(0, 1, 0xffff, 0x7fffffff)).map(([bytes, length]) => {
    const out = Uint8Array.from(bytes);
    new DataView(out.buffer).setUint16(8, length & 0xffff, true);
    return out;
  }),
);

async function readAll(path: string): Promise<number> {
  const npy = await openNpy(path);
  try {
    const { rowCount, rowLength } = npy.header;
    let values = 0;
    for (let start = 0; start < rowCount; start += READ_ROWS) {
      const rows = await npy.readRows(start, Math.min(rowCount, start + READ_ROWS));
      expect(rows.length).toBe((Math.min(rowCount, start + READ_ROWS) - start) * rowLength);
      values += rows.length;
    }
    return values;
  } finally {
    await npy.close();
  }
}

describe('npy reader (property)', () => {
  it('parseNpyHeader: any bytes give a header that fits them or an NPY_MALFORMED error', async () => {
    await fc.assert(
      fc.asyncProperty(anyNpy, async (bytes) => {
        const outcome = await outcomeOf(async () => parseNpyHeader(bytes, 'x.npy'));
        if (outcome.ok) {
          const h = outcome.value;
          expect(h.dataOffset).toBeLessThanOrEqual(bytes.length);
          expect(Number.isSafeInteger(h.rowCount) && Number.isSafeInteger(h.rowLength)).toBe(true);
        } else expect(outcome.code).toBe('NPY_MALFORMED');
      }),
      { numRuns: runs(400) },
    );
  });

  it('openNpy + readRows: any file gives its rows (finite float32) or a ClipstreamError, within a deadline', async () => {
    const dir = await tempDir();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(anyNpy, async (bytes) => {
        const path = join(dir, `f${n++}.npy`);
        await writeFile(path, bytes);
        const outcome = await outcomeOf(() => readAll(path));
        if (outcome.ok) expect(outcome.value).toBeLessThanOrEqual(bytes.length); // ≥ 2 bytes a value
      }),
      { numRuns: runs(150) },
    );
  });

  it('a valid file reads back what was written', async () => {
    const dir = await tempDir();
    await fc.assert(
      fc.asyncProperty(
        fc.nat(10),
        fc.integer({ min: 1, max: 6 }),
        fc.constantFrom('float16' as const, 'float32' as const),
        async (rows, dim, dtype) => {
          const values = Float32Array.from({ length: rows * dim }, (_, i) => (i % 7) / 4 - 1);
          const path = join(dir, `v-${rows}-${dim}-${dtype}.npy`);
          await writeFile(path, encodeNpy(values, [rows, dim], dtype));
          const npy = await openNpy(path);
          expect(Array.from(await npy.readRows(0, rows))).toEqual(Array.from(values));
          await npy.close();
          expect(encodeNpyHeader([rows, dim], dtype).length % 64).toBe(0);
        },
      ),
      { numRuns: runs(40) },
    );
  });
});
