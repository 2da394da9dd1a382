import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import { describe, expect, it } from 'vitest';
import { buildAnn } from '../../src/index/ann-build.js';
import { STAGING } from '../../src/index/build.js';
import { buildIndex, openIndex } from '../../src/index/index.js';
import { readIndexInfo } from '../../src/index/info.js';
import { writeNpy } from '../../src/io/npy.js';
import { openParquetWriter, type ParquetColumnType } from '../../src/io/parquet-write.js';
import { tempDir } from '../helpers/tmp.js';

// Issue 15, items 6 and 9: a build that fails or is refused leaves nothing that blocks a rerun, and metadata
// partitions whose column types differ are refused (or converted exactly, and said so), never stored as null.

const DIM = 8;

/** Row r of partition p: a unit vector along axis (p + r) % DIM, or `poison` at one row. */
function vectors(p: number, rows: number, poison?: { row: number; value: number }): Float32Array[] {
  return Array.from({ length: rows }, (_, r) => {
    const v = new Float32Array(DIM);
    v[(p + r) % DIM] = 1;
    if (poison?.row === r) v[3] = poison.value;
    return v;
  });
}

interface PartitionSpec {
  rows?: number;
  /** The parquet type of the `width` column and a value per row. */
  width?: [ParquetColumnType, (r: number) => unknown];
  poison?: { row: number; value: number };
  /** Vectors scaled off unit length. */
  scale?: number;
}

async function writePartition(root: string, name: string, p: number, spec: PartitionSpec = {}): Promise<void> {
  await mkdir(join(root, 'img_emb'), { recursive: true });
  await mkdir(join(root, 'metadata'), { recursive: true });
  const rows = spec.rows ?? 20;
  const scaled = vectors(p, rows, spec.poison).map((v) => v.map((x) => x * (spec.scale ?? 1)));
  await writeNpy(join(root, 'img_emb', `img_emb_${name}.npy`), scaled, DIM, 'float32');
  const [type, value] = spec.width ?? ['INT64', (r: number) => 100 + r];
  const w = await openParquetWriter(join(root, 'metadata', `metadata_${name}.parquet`), [
    { name: 'url', type: 'STRING' },
    { name: 'width', type },
  ]);
  for (let r = 0; r < rows; r++) await w.writeRow({ url: `http://x/${name}/${r}.jpg`, width: value(r) });
  await w.close();
}

async function ids(dir: string): Promise<number[]> {
  const index = await openIndex(dir);
  try {
    const rows = await index.search({ vector: vectors(0, 1)[0]!, minSimilarity: -1 });
    return rows.map((r) => r.id).sort((a, b) => a - b);
  } finally {
    index.close();
  }
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('index build: nothing half-built blocks a rerun', () => {
  it('NaN in an embedding is refused naming the file and the row; nothing is left, and the rerun builds', async () => {
    const dir = await tempDir();
    const emb = join(dir, 'emb');
    const out = join(dir, 'idx');
    await writePartition(emb, '0', 0);
    await writePartition(emb, '1', 1, { poison: { row: 7, value: NaN } });
    await expect(buildIndex({ embeddings: emb, output: out, batchRows: 8 })).rejects.toMatchObject({
      code: 'NPY_MALFORMED',
      message: expect.stringMatching(/img_emb_1\.npy: expected finite numbers but row 7 column 3 is NaN/),
    });
    expect(existsSync(out) ? await readdir(out) : []).toEqual([]); // partition 0 had been imported: it is gone too
    await writePartition(emb, '1', 1);
    expect(await buildIndex({ embeddings: emb, output: out })).toMatchObject({ count: 40 });
    expect(await ids(out)).toEqual(range(40));
  });

  it('a refusal after the rows were imported (ivf_hnsw_sq on vectors that are not unit) leaves nothing: the rerun with flat builds', async () => {
    // Before: samples.lance stayed without clipstream.json, and every rerun failed with "Table 'samples' already exists".
    const dir = await tempDir();
    const emb = join(dir, 'emb');
    const out = join(dir, 'idx');
    await writePartition(emb, '0', 0, { scale: 2 });
    await expect(buildIndex({ embeddings: emb, output: out, indexType: 'ivf_hnsw_sq' })).rejects.toMatchObject({
      code: 'INDEX_INVALID',
      message: expect.stringMatching(/not unit length/),
    });
    expect(await readdir(out)).toEqual([]);
    expect(await buildIndex({ embeddings: emb, output: out, indexType: 'flat' })).toMatchObject({
      count: 20,
      ann: { type: 'flat' },
    });
  });

  it('what a killed build leaves is cleared (the staging folder) or named (a table without clipstream.json)', async () => {
    const dir = await tempDir();
    const emb = join(dir, 'emb');
    const out = join(dir, 'idx');
    await writePartition(emb, '0', 0);
    // A build killed while importing: its staging folder holds a table.
    const staged = await lancedb.connect(join(out, STAGING));
    (await staged.createTable('samples', [{ id: 0n, vector: [1, 2] }])).close();
    expect(await buildIndex({ embeddings: emb, output: out })).toMatchObject({ count: 20 });
    expect((await readdir(out)).sort()).toEqual(['clipstream.json', 'samples.lance']);
    // Killed between its last two steps (table renamed into place, clipstream.json not written yet).
    await rm(join(out, 'clipstream.json'));
    await expect(buildIndex({ embeddings: emb, output: out })).rejects.toMatchObject({
      code: 'INDEX_INVALID',
      message: expect.stringMatching(/idx holds samples\.lance but no clipstream\.json/),
      hint: expect.stringMatching(/Remove .*samples\.lance and rerun/),
    });
  });

  it('extending: a refused partition leaves the index as it was; rows a killed extension appended are trimmed', async () => {
    const dir = await tempDir();
    const emb = join(dir, 'emb');
    const out = join(dir, 'idx');
    await writePartition(emb, '0', 0);
    await buildIndex({ embeddings: emb, output: out });
    await writePartition(emb, '1', 1, { rows: 30, poison: { row: 25, value: Infinity } });
    await expect(buildIndex({ embeddings: emb, output: out, batchRows: 10 })).rejects.toMatchObject({
      message: expect.stringMatching(/img_emb_1\.npy: expected finite numbers but row 25 column \d+ is Infinity/),
    });
    expect(await readIndexInfo(out)).toMatchObject({ count: 20, partitions: ['0'] });
    expect(await ids(out)).toEqual(range(20)); // the 20 rows of partition 1 read before row 25 were taken back
    // A killed extension: rows appended, clipstream.json not updated.
    const db = await lancedb.connect(out);
    const table = await db.openTable('samples');
    await table.add([{ id: 20n, vector: Array.from(vectors(1, 1)[0]!), url: 'http://x/stray', width: 1n }]);
    table.close();
    await writePartition(emb, '1', 1, { rows: 30 });
    expect(await buildIndex({ embeddings: emb, output: out })).toMatchObject({ count: 50, partitions: ['0', '1'] });
    expect(await ids(out)).toEqual(range(50)); // without the trim: 51 rows, id 20 twice
  });

  it('extending: a new partition that sorts among the indexed ones is refused (its ids would collide)', async () => {
    const dir = await tempDir();
    const emb = join(dir, 'emb');
    const out = join(dir, 'idx');
    await writePartition(emb, '1', 0);
    await writePartition(emb, '2', 1);
    await buildIndex({ embeddings: emb, output: out });
    await writePartition(emb, '10', 2); // sorts between 1 and 2: its rows would get ids 20…39, partition 2's
    await expect(buildIndex({ embeddings: emb, output: out })).rejects.toMatchObject({
      code: 'INDEX_INVALID',
      message: expect.stringMatching(/partition 10 sorts among them.*ids would collide/),
    });
    expect(await ids(out)).toEqual(range(40));
  });

  it('extending: an index whose table is gone, or a folder that gained text embeddings, is refused by name', async () => {
    const dir = await tempDir();
    const emb = join(dir, 'emb');
    const out = join(dir, 'idx');
    await writePartition(emb, '0', 0);
    await buildIndex({ embeddings: emb, output: out });
    await writePartition(emb, '1', 1);
    await mkdir(join(emb, 'text_emb'));
    for (const [name, p] of [
      ['0', 0],
      ['1', 1],
    ] as const)
      await writeNpy(join(emb, 'text_emb', `text_emb_${name}.npy`), vectors(p, 20), DIM, 'float32');
    await expect(buildIndex({ embeddings: emb, output: out })).rejects.toMatchObject({
      code: 'INDEX_INVALID',
      message: expect.stringMatching(/idx was built without text embeddings but .*emb has text_emb/),
    });
    await rm(join(emb, 'text_emb'), { recursive: true });
    await rm(join(out, 'samples.lance'), { recursive: true });
    await expect(buildIndex({ embeddings: emb, output: out })).rejects.toMatchObject({
      code: 'INDEX_INVALID',
      message: expect.stringMatching(/idx holds clipstream\.json but no readable samples table/),
    });
  });

  it('ivf_pq on fewer rows than it trains on is refused before anything is written; a LanceDB failure loses its Rust path', async () => {
    const dir = await tempDir();
    const emb = join(dir, 'emb');
    await writePartition(emb, '0', 0, { rows: 50 });
    await expect(buildIndex({ embeddings: emb, output: join(dir, 'idx'), indexType: 'ivf_pq' })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringMatching(/at least 256 rows for --index-type ivf_pq .* has 50/),
    });
    expect(existsSync(join(dir, 'idx'))).toBe(false);
    const db = await lancedb.connect(join(dir, 'raw'));
    const table = await db.createTable(
      't',
      vectors(0, 300).map((v, i) => ({ id: BigInt(i), vector: Array.from(v) })),
    );
    // 160 000 rows claimed: sqrt → 400 IVF centroids for 300 vectors
    const error = await buildAnn(table, 'ivf_pq', 160_000, DIM).catch((err: unknown) => err);
    table.close();
    expect(error).toMatchObject({
      code: 'INDEX_INVALID',
      message: expect.stringMatching(/^building the ivf_pq index failed: .*KMeans cannot train 400 centroids/),
    });
    expect((error as Error).message).not.toMatch(/\.rs:\d+|Caused by/);
  });
});

describe('index build: metadata column types across partitions', () => {
  it('width as text in one partition and an integer in another is refused naming both files and types; nothing is written', async () => {
    const dir = await tempDir();
    const emb = join(dir, 'emb');
    const out = join(dir, 'idx');
    await writePartition(emb, '0', 0);
    await writePartition(emb, '1', 1, { width: ['STRING', (r) => String(200 + r)] });
    await expect(buildIndex({ embeddings: emb, output: out })).rejects.toMatchObject({
      code: 'INPUT_MALFORMED',
      message:
        'column "width" is BYTE_ARRAY (UTF8) in metadata/metadata_1.parquet (stored as string) but INT64 in metadata/metadata_0.parquet (stored as int64): an index column has one type',
    });
    expect(existsSync(out)).toBe(false);
  });

  it('integers and floats are stored as float64, exactly, and said so; an integer float64 cannot hold is refused naming the row', async () => {
    const dir = await tempDir();
    const emb = join(dir, 'emb');
    await writePartition(emb, '0', 0, { width: ['DOUBLE', (r) => r + 0.5] });
    await writePartition(emb, '1', 1, { width: ['INT64', (r) => BigInt(2 ** 53) - BigInt(r)] });
    const notes: string[] = [];
    await buildIndex({ embeddings: emb, output: join(dir, 'idx'), onNote: (n) => notes.push(n) });
    expect(notes).toEqual([
      'column "width" is INT64 in metadata/metadata_1.parquet but DOUBLE in metadata/metadata_0.parquet: stored as float64 (exact for every integer up to 2^53; one float64 cannot hold is refused)',
    ]);
    const index = await openIndex(join(dir, 'idx'));
    const rows = await index.getByIds([0, 20, 23]);
    index.close();
    expect(rows.map((r) => r.metadata.width)).toEqual([0.5, 2 ** 53, 2 ** 53 - 3]);

    await writePartition(emb, '1', 1, {
      width: ['INT64', (r) => (r === 3 ? 2n ** 53n + 1n : r === 4 ? 2n ** 60n : BigInt(r))],
    });
    await expect(buildIndex({ embeddings: emb, output: join(dir, 'idx2') })).rejects.toMatchObject({
      code: 'INPUT_MALFORMED',
      message: expect.stringMatching(
        /metadata_1\.parquet row 3: column "width" holds 9007199254740993 \(an integer\), an integer float64 cannot hold exactly/,
      ),
    });
    expect(await readdir(join(dir, 'idx2'))).toEqual([]);
  });

  it("extending: a new partition must fit the index's column types", async () => {
    const dir = await tempDir();
    const emb = join(dir, 'emb');
    const out = join(dir, 'idx');
    await writePartition(emb, '0', 0);
    await buildIndex({ embeddings: emb, output: out });
    await writePartition(emb, '1', 1, { width: ['DOUBLE', (r) => r / 2] });
    await expect(buildIndex({ embeddings: emb, output: out })).rejects.toMatchObject({
      message:
        'column "width" is DOUBLE in metadata/metadata_1.parquet (stored as float64) but int64 in the index: an index column has one type',
    });
    expect(await readIndexInfo(out)).toMatchObject({ count: 20, columns: { url: 'string', width: 'int64' } });
  });

  it('INT32 columns (img2dataset writes width and height so) stay integers in the index: int64, not float64', async () => {
    const root = await tempDir();
    await writePartition(root, '0', 0, { width: ['INT32', (r) => 256 + r] });
    await writePartition(root, '1', 1, { width: ['INT64', (r) => BigInt(300 + r)] });
    const out = join(await tempDir(), 'idx');
    await buildIndex({ embeddings: root, output: out });
    expect((await readIndexInfo(out))?.columns).toEqual({ url: 'string', width: 'int64' });
    const index = await openIndex(out);
    try {
      const [row] = await index.getByIds([3]);
      expect(row!.metadata.width).toBe(259);
      const db = await lancedb.connect(out);
      const table = await db.openTable('samples');
      expect(String((await table.schema()).fields.find((f) => f.name === 'width')!.type)).toMatch(/^Int64$/);
      table.close();
    } finally {
      index.close();
    }
  });
});
