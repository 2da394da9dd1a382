import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { ClipstreamError } from '../../src/core/errors.js';
import { openEmbeddingFolder, readEmbeddingBatches, type EmbeddingBatch } from '../../src/io/embedding-folder.js';
import { writeNpy, type NpyDtype } from '../../src/io/npy.js';
import { tempDir } from '../helpers/tmp.js';

interface PartitionSpec {
  name: string;
  rows: number;
  /** Rows of the parquet when it should differ from the npy. */
  metaRows?: number;
  textRows?: number;
  dim?: number;
  dtype?: NpyDtype;
  rowGroupSize?: number;
  extraColumn?: boolean;
}

/** Vector j of a sample keyed `k` (a unique small integer): exact in float16. */
const imageValue = (k: number, j: number) => k + j / 4;
const textValue = (k: number, j: number) => -k - j / 4;

/**
 * Writes an embedding folder; sample keys are `base + r` where `base` is 100 × the partition's position in
 * `specs` (not its id order), so tests can check which sample each global id lands on.
 */
async function makeFolder(root: string, specs: PartitionSpec[], opts: { text?: boolean; dim?: number } = {}) {
  const dim = opts.dim ?? 4;
  await mkdir(join(root, 'img_emb'), { recursive: true });
  await mkdir(join(root, 'metadata'), { recursive: true });
  if (opts.text) await mkdir(join(root, 'text_emb'), { recursive: true });
  for (const [index, spec] of specs.entries()) {
    const d = spec.dim ?? dim;
    const base = 100 * index;
    const vectors = (rows: number, value: (k: number, j: number) => number) =>
      Array.from({ length: rows }, (_, r) => Float32Array.from({ length: d }, (_, j) => value(base + r, j)));
    await writeNpy(
      join(root, 'img_emb', `img_emb_${spec.name}.npy`),
      vectors(spec.rows, imageValue),
      d,
      spec.dtype ?? 'float16',
    );
    if (opts.text) {
      await writeNpy(
        join(root, 'text_emb', `text_emb_${spec.name}.npy`),
        vectors(spec.textRows ?? spec.rows, textValue),
        d,
        'float32',
      );
    }
    const n = spec.metaRows ?? spec.rows;
    const keys = Array.from({ length: n }, (_, r) => base + r);
    const columnData = [
      { name: 'image_path', data: keys.map((k) => `img/${k}.jpg`), type: 'STRING' as const },
      { name: 'caption', data: keys.map((k) => `caption ${k}`), type: 'STRING' as const },
      { name: 'url', data: keys.map((k) => `https://example.com/${k}.jpg`), type: 'STRING' as const },
      { name: 'key', data: keys, type: 'INT32' as const },
    ];
    if (spec.extraColumn)
      columnData.push({ name: 'NSFW', data: keys.map((k) => (k % 2 ? 'UNLIKELY' : 'NSFW')), type: 'STRING' as const });
    const buffer = parquetWriteBuffer({ columnData, rowGroupSize: spec.rowGroupSize ?? 1000 });
    await writeFile(join(root, 'metadata', `metadata_${spec.name}.parquet`), new Uint8Array(buffer));
  }
}

async function collect(gen: AsyncIterable<EmbeddingBatch>): Promise<EmbeddingBatch[]> {
  const out: EmbeddingBatch[] = [];
  for await (const batch of gen) out.push(batch);
  return out;
}

async function expectError(promise: Promise<unknown>, code: string, ...parts: (string | RegExp)[]) {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error, `expected a ${code} error`).toBeInstanceOf(ClipstreamError);
  const e = error as ClipstreamError;
  expect(e.code, e.message).toBe(code);
  for (const part of parts) expect(e.message).toMatch(part);
  return e;
}

describe('openEmbeddingFolder + readEmbeddingBatches', () => {
  it('reads 3 partitions with global ids, vectors, text vectors and metadata aligned', async () => {
    const root = await tempDir();
    await makeFolder(
      root,
      [
        { name: '0', rows: 7 },
        { name: '1', rows: 5, rowGroupSize: 2 }, // batches cross parquet row groups
        { name: '2', rows: 4, extraColumn: true },
      ],
      { text: true },
    );
    const folder = await openEmbeddingFolder(root);
    expect(folder).toMatchObject({
      root,
      dim: 4,
      dtype: 'float16',
      count: 16,
      hasText: true,
      numericOrderDiffers: false,
    });
    expect(folder.partitions.map((p) => [p.name, p.rows, p.firstId])).toEqual([
      ['0', 7, 0],
      ['1', 5, 7],
      ['2', 4, 12],
    ]);
    expect(folder.partitions[1]).toMatchObject({
      npyPath: join(root, 'img_emb', 'img_emb_1.npy'),
      textNpyPath: join(root, 'text_emb', 'text_emb_1.npy'),
      metadataPath: join(root, 'metadata', 'metadata_1.parquet'),
    });
    expect(folder.metadataColumns).toEqual(['image_path', 'caption', 'url', 'key', 'NSFW']);

    const batches = await collect(readEmbeddingBatches(folder, { batchRows: 3 }));
    // batches never span partitions: 7 → 3+3+1, 5 → 3+2, 4 → 3+1
    expect(batches.map((b) => [b.partition, b.ids.length])).toEqual([
      ['0', 3],
      ['0', 3],
      ['0', 1],
      ['1', 3],
      ['1', 2],
      ['2', 3],
      ['2', 1],
    ]);
    const ids = batches.flatMap((b) => b.ids);
    expect(ids).toEqual(Array.from({ length: 16 }, (_, i) => i));
    for (const batch of batches) {
      expect(batch.vectors).toHaveLength(batch.ids.length * 4);
      expect(batch.textVectors).toHaveLength(batch.ids.length * 4);
      expect(batch.metadata).toHaveLength(batch.ids.length);
      batch.metadata.forEach((row, i) => {
        const k = row.key as number;
        expect(row.image_path).toBe(`img/${k}.jpg`);
        expect(Array.from(batch.vectors.subarray(i * 4, i * 4 + 4))).toEqual([0, 1, 2, 3].map((j) => imageValue(k, j)));
        expect(Array.from(batch.textVectors!.subarray(i * 4, i * 4 + 4))).toEqual(
          [0, 1, 2, 3].map((j) => textValue(k, j)),
        );
        // a partition without the NSFW column reads it as null
        expect(row.NSFW).toBe(batch.partition === '2' ? (k % 2 ? 'UNLIKELY' : 'NSFW') : null);
      });
    }
    // id → sample: partition 1 (written second, keys 100…) starts at id 7
    expect(batches[3]!.metadata[0]!.key).toBe(100);
    expect(batches[3]!.ids[0]).toBe(7);
  });

  it('selects partitions and columns, skips text on request, refuses unknown partitions', async () => {
    const root = await tempDir();
    await makeFolder(
      root,
      [
        { name: '00', rows: 2 },
        { name: '01', rows: 3 },
        { name: '02', rows: 1 },
      ],
      { text: true },
    );
    const folder = await openEmbeddingFolder(root);
    const batches = await collect(
      readEmbeddingBatches(folder, { batchRows: 10, partitions: ['02', '01'], text: false, columns: ['url'] }),
    );
    expect(batches.map((b) => b.partition)).toEqual(['01', '02']); // id order, not the option's order
    expect(batches[0]!.ids).toEqual([2, 3, 4]);
    expect(batches[0]!.textVectors).toBeUndefined();
    expect(batches[1]!.metadata).toEqual([{ url: 'https://example.com/200.jpg' }]);
    await expectError(
      collect(readEmbeddingBatches(folder, { batchRows: 10, partitions: ['3'] })),
      'INVALID_OPTION',
      /00, 01, 02.*received 3/,
    );
    await expectError(collect(readEmbeddingBatches(folder, { batchRows: 0 })), 'INVALID_OPTION', /batchRows/);
  });

  it('orders partitions lexicographically by file name, as autofaiss does, and says when that is not numeric', async () => {
    const root = await tempDir();
    // written in numeric order 1, 2, 10; read as 1, 10, 2
    await makeFolder(root, [
      { name: '1', rows: 2 },
      { name: '2', rows: 2, dtype: 'float32' },
      { name: '10', rows: 3 },
    ]);
    const folder = await openEmbeddingFolder(root);
    expect(folder.partitions.map((p) => [p.name, p.firstId])).toEqual([
      ['1', 0],
      ['10', 2],
      ['2', 5],
    ]);
    expect(folder.numericOrderDiffers).toBe(true);
    expect(folder.dtype).toBe('float32'); // mixed float16 / float32
    const batches = await collect(readEmbeddingBatches(folder, { batchRows: 100 }));
    expect(batches.map((b) => [b.partition, b.ids[0], b.metadata[0]!.key])).toEqual([
      ['1', 0, 0],
      ['10', 2, 200],
      ['2', 5, 100],
    ]);
    expect(batches[2]!.vectors[1]).toBe(imageValue(100, 1));
  });

  it('refuses a misaligned folder naming both files and both row counts', async () => {
    const root = await tempDir();
    await makeFolder(root, [
      { name: '0', rows: 4 },
      { name: '3', rows: 10, metaRows: 8 },
    ]);
    await expectError(
      openEmbeddingFolder(root),
      'EMBEDDINGS_MISALIGNED',
      'img_emb/img_emb_3.npy has 10 rows but metadata/metadata_3.parquet has 8',
      root,
    );
  });

  it('refuses misaligned text embeddings and unequal dims', async () => {
    const root = await tempDir();
    await makeFolder(
      root,
      [
        { name: '0', rows: 4, textRows: 3 },
        { name: '1', rows: 2, dim: 8 },
      ],
      { text: true },
    );
    const e = await expectError(openEmbeddingFolder(root), 'EMBEDDINGS_MISALIGNED', /2 problems/);
    expect(e.message).toContain('img_emb/img_emb_0.npy has 4 rows but text_emb/text_emb_0.npy has 3');
    expect(e.message).toContain('img_emb/img_emb_1.npy has dim 8 but img_emb/img_emb_0.npy has dim 4');
  });

  it('names an npy without its parquet, and a parquet without its npy', async () => {
    const root = await tempDir();
    await makeFolder(root, [
      { name: '0', rows: 2 },
      { name: '1', rows: 2 },
      { name: '2', rows: 2 },
    ]);
    await rm(join(root, 'metadata', 'metadata_1.parquet'));
    await rm(join(root, 'img_emb', 'img_emb_2.npy'));
    const e = await expectError(openEmbeddingFolder(root), 'EMBEDDINGS_MISALIGNED');
    expect(e.message).toContain('img_emb/img_emb_1.npy has no partner metadata/metadata_1.parquet');
    expect(e.message).toContain('metadata/metadata_2.parquet has no partner img_emb/img_emb_2.npy');
  });

  it('names a missing text partner when text_emb/ exists', async () => {
    const root = await tempDir();
    await makeFolder(
      root,
      [
        { name: '0', rows: 2 },
        { name: '1', rows: 2 },
      ],
      { text: true },
    );
    await rm(join(root, 'text_emb', 'text_emb_1.npy'));
    await expectError(
      openEmbeddingFolder(root),
      'EMBEDDINGS_MISALIGNED',
      'img_emb/img_emb_1.npy has no partner text_emb/text_emb_1.npy',
    );
  });

  it('an empty or missing folder → INPUT_NOT_FOUND saying what is expected', async () => {
    const root = await tempDir();
    await expectError(
      openEmbeddingFolder(root),
      'INPUT_NOT_FOUND',
      /no img_emb\/ folder in/,
      /img_emb\/img_emb_\{P\}\.npy \+ metadata\/metadata_\{P\}\.parquet/,
    );
    await mkdir(join(root, 'img_emb'));
    await expectError(
      openEmbeddingFolder(root),
      'INPUT_NOT_FOUND',
      /img_emb\/ in .* holds no img_emb_\{P\}\.npy files/,
    );
    await expectError(openEmbeddingFolder(join(root, 'nope')), 'INPUT_NOT_FOUND', /no embedding folder at .*nope/);
    await makeFolder(root, [{ name: '0', rows: 1 }]);
    await rm(join(root, 'metadata'), { recursive: true });
    await expectError(openEmbeddingFolder(root), 'INPUT_NOT_FOUND', /no metadata\/ folder/);
  });

  it('refuses stray npy files and 1-D embeddings; passes npy errors through naming the file', async () => {
    const root = await tempDir();
    await makeFolder(root, [{ name: '0', rows: 2 }]);
    await writeFile(join(root, 'img_emb', 'extra.npy'), new Uint8Array(0));
    await expectError(openEmbeddingFolder(root), 'INPUT_MALFORMED', /unexpected file .*extra\.npy/);
    await rm(join(root, 'img_emb', 'extra.npy'));
    await writeNpy(join(root, 'img_emb', 'img_emb_0.npy'), [new Float32Array(6)], 3, 'float16'); // still 2 rows × 3
    await openEmbeddingFolder(root);
    await copyFile(
      fileURLToPath(new URL('../fixtures/npy/f32_1d.npy', import.meta.url)),
      join(root, 'img_emb', 'img_emb_0.npy'),
    );
    await expectError(
      openEmbeddingFolder(root),
      'NPY_MALFORMED',
      /expected a 2-D \[n, d\] embedding array in .*img_emb_0\.npy but found shape \(7,\)/,
    );
    await writeFile(join(root, 'img_emb', 'img_emb_0.npy'), new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]));
    await expectError(openEmbeddingFolder(root), 'NPY_MALFORMED', /img_emb_0\.npy does not start/);
  });

  it('refuses rows that changed since open', async () => {
    const root = await tempDir();
    await makeFolder(root, [{ name: '0', rows: 3 }]);
    const folder = await openEmbeddingFolder(root);
    await writeNpy(join(root, 'img_emb', 'img_emb_0.npy'), [new Float32Array(8)], 4, 'float16');
    await expectError(
      collect(readEmbeddingBatches(folder, { batchRows: 2 })),
      'EMBEDDINGS_MISALIGNED',
      /img_emb_0\.npy changed since the folder was opened: it has 2 rows, expected 3/,
    );
  });
});
