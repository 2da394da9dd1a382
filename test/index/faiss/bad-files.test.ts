import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ClipstreamError } from '../../../src/core/errors.js';
import { openFaissIndex } from '../../../src/index/faiss/open.js';
import { tempDir } from '../../helpers/tmp.js';
import { faissFixtures, FIXTURE_TIMEOUT_MS } from './fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await faissFixtures();
}, FIXTURE_TIMEOUT_MS);

/** Opens `bytes` written as a file; expects INDEX_INVALID naming it, without growing memory by what a header claims. */
async function expectRefused(bytes: Uint8Array, ...parts: RegExp[]): Promise<ClipstreamError> {
  const path = join(await tempDir(), 'bad.index');
  await writeFile(path, bytes);
  const before = process.memoryUsage().arrayBuffers;
  const err = await openFaissIndex(path).then(
    async (index) => {
      await index.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err, 'expected the open to fail').toBeInstanceOf(ClipstreamError);
  const e = err as ClipstreamError;
  expect(e.code, e.message).toBe('INDEX_INVALID');
  expect(e.message).toContain('bad.index');
  for (const p of parts) expect(e.message).toMatch(p);
  expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20);
  return e;
}

const lastIndexOf = (bytes: Uint8Array, ascii: string) => Buffer.from(bytes).lastIndexOf(Buffer.from(ascii, 'latin1'));
const setU64 = (bytes: Uint8Array, at: number, value: bigint) =>
  new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(at, value, true);

describe('bad index files: clear errors, no crash, no huge allocation', () => {
  let autofaiss: Uint8Array;
  let flat: Uint8Array;
  beforeAll(async () => {
    autofaiss = new Uint8Array(await readFile(join(dir, 'folders/autofaiss/image.index')));
    flat = new Uint8Array(await readFile(join(dir, 'indexes/flat_ip.index')));
  });

  it('a file cut anywhere (headers, OPQ matrix, quantizer graph, PQ codebooks, lists)', async () => {
    for (let i = 0; i < 12; i++) {
      const cut = Math.floor((autofaiss.length * i) / 12);
      await expectRefused(autofaiss.slice(0, cut), /truncated|ends past the end|bytes are left/);
    }
  });

  it('an unknown or unsupported type tag, named with the file', async () => {
    const sq = autofaiss.slice();
    sq.set(Buffer.from('IwSq'), 0);
    const e = await expectRefused(sq, /faiss index type 'IwSq' \(IndexIVFScalarQuantizer\) at byte 0 is not supported/);
    expect(e.hint).toMatch(/clipstream reads Flat, HNSW/);
    const nested = autofaiss.slice();
    nested.set(Buffer.from('ABCD'), lastIndexOf(nested, 'IHNf'));
    await expectRefused(nested, /faiss index type 'ABCD' at byte \d+ is not supported/);
    await expectRefused(new Uint8Array(Buffer.from('PAR1 not an index at all, just some bytes')), /'PAR1'/);
    await expectRefused(new Uint8Array(0), /truncated/);
  });

  it('lying sizes: ntotal, a vector length, a list size', async () => {
    const ntotal = flat.slice();
    setU64(ntotal, 8, 1n << 40n);
    await expectRefused(ntotal, /flat index holds 320000 floats, expected ntotal × d/);
    const count = flat.slice();
    setU64(count, 4 + 33, 1n << 50n);
    await expectRefused(count, /flat vectors claims \d+ elements \(\d+ bytes\) but only \d+ bytes are left/);
    const list = autofaiss.slice();
    const sizes = lastIndexOf(list, 'full') + 4 + 8; // the sizes vector's first entry
    setU64(list, sizes, 1n << 40n);
    await expectRefused(list, /list 0 of 1099511627776 entries ends past the end of the file/);
    const negative = autofaiss.slice();
    setU64(negative, sizes, 1n << 63n);
    await expectRefused(negative, /list sizes\[0\] is beyond what any index holds|negative/);
  });

  it('lying on-disk lists: a size past the data file, a data file shorter than recorded', async () => {
    const populated = new Uint8Array(await readFile(join(dir, 'folders/ondisk/image.index/populated.index')));
    const folder = await tempDir();
    await mkdir(join(folder, 'image.index'));
    await copyFile(
      join(dir, 'folders/ondisk/image.index/merged_index.ivfdata'),
      join(folder, 'image.index/merged_index.ivfdata'),
    );
    const first = lastIndexOf(populated, 'ilod') + 4 + 8 + 8 + 8; // fourcc, nlist, code_size, vector length
    const lie = populated.slice();
    setU64(lie, first, 1n << 40n); // size
    setU64(lie, first + 8, 1n << 40n); // capacity
    const path = join(folder, 'image.index/populated.index');
    await writeFile(path, lie);
    const err = await openFaissIndex(path).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'INDEX_INVALID',
      message: expect.stringMatching(/on-disk list 0 .* ends past the data file's recorded size 288000/),
    });
  });
});

describe('bad queries and parameters', () => {
  it('a wrong dimension, NaN, k = 0, nprobe = 0: INVALID_OPTION; a huge efSearch allocates no more than the graph', async () => {
    const index = await openFaissIndex(join(dir, 'indexes/hnsw_ip.index'));
    try {
      const q = new Float32Array(64).fill(0.125);
      await expect(index.search(new Float32Array(63), 10)).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        message: expect.stringMatching(/64 floats .* received 63/),
      });
      await expect(
        index.search(
          q.map((x, i) => (i === 3 ? NaN : x)),
          10,
        ),
      ).rejects.toMatchObject({ code: 'INVALID_OPTION', message: /NaN/ });
      await expect(index.search(q, 0)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
      await expect(index.search(q, 10, { nprobe: 0 })).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        message: /nprobe/,
      });
      const before = process.memoryUsage().arrayBuffers;
      const wide = await index.search(q, 10, { efSearch: 2 ** 31 - 1 }); // 8 000 nodes: the whole graph is explored
      expect(wide[0]!.ids).toHaveLength(10);
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 << 20);
    } finally {
      await index.close();
    }
  });
});
