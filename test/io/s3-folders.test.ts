import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEmbeddingFolder, readEmbeddingBatches, type EmbeddingBatch } from '../../src/io/embedding-folder.js';
import { writeNpy } from '../../src/io/npy.js';
import { s3Put } from '../../src/io/s3.js';
import { startS3Server, type S3Server } from '../helpers/services.js';
import { tempDir } from '../helpers/tmp.js';

/** A clip-retrieval embedding folder read in place on S3 (moto) as it is read from a local folder. */

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3Server();
  await s3.createBucket('emb');
}, 600_000);
afterAll(async () => {
  await s3?.stop();
});

async function makeFolder(root: string, partitions: number, rows: number, dim = 8): Promise<void> {
  for (const d of ['img_emb', 'text_emb', 'metadata']) await mkdir(join(root, d), { recursive: true });
  for (let p = 0; p < partitions; p++) {
    const vectors = (sign: number) =>
      Array.from({ length: rows }, (_, r) => {
        const v = Float32Array.from({ length: dim }, (_, j) => sign * (((p * rows + r + j) % 7) + 1));
        const norm = Math.hypot(...v);
        return v.map((x) => x / norm);
      });
    await writeNpy(join(root, 'img_emb', `img_emb_${p}.npy`), vectors(1), dim, 'float16');
    await writeNpy(join(root, 'text_emb', `text_emb_${p}.npy`), vectors(-1), dim, 'float16');
    const keys = Array.from({ length: rows }, (_, r) => p * rows + r);
    const buffer = parquetWriteBuffer({
      columnData: [
        { name: 'url', data: keys.map((k) => `https://example.com/${k}.jpg`), type: 'STRING' },
        { name: 'caption', data: keys.map((k) => `caption ${k}`), type: 'STRING' },
      ],
    });
    await writeFile(join(root, 'metadata', `metadata_${p}.parquet`), new Uint8Array(buffer));
  }
}

async function upload(local: string, url: string): Promise<void> {
  for (const entry of await readdir(local, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    await s3Put(`${url}/${relative(local, path)}`, { file: path });
  }
}

async function batches(root: string): Promise<EmbeddingBatch[]> {
  const out: EmbeddingBatch[] = [];
  for await (const b of readEmbeddingBatches(await openEmbeddingFolder(root), { batchRows: 16 })) out.push(b);
  return out;
}

describe('embedding folders on S3', () => {
  it('opens and reads the same partitions, vectors, text vectors and metadata as the local copy', async () => {
    const dir = await tempDir();
    await makeFolder(join(dir, 'emb'), 3, 20);
    await upload(join(dir, 'emb'), 's3://emb/laion/part-a');
    const local = await openEmbeddingFolder(join(dir, 'emb'));
    const remote = await openEmbeddingFolder('s3://emb/laion/part-a');
    expect(remote.partitions.map((p) => [p.name, p.rows])).toEqual(local.partitions.map((p) => [p.name, p.rows]));
    expect(remote.partitions[1]!.npyPath).toBe('s3://emb/laion/part-a/img_emb/img_emb_1.npy');
    const [l, r] = [await batches(join(dir, 'emb')), await batches('s3://emb/laion/part-a')];
    expect(r.map((b) => b.ids)).toEqual(l.map((b) => b.ids));
    expect(r.map((b) => Array.from(b.vectors))).toEqual(l.map((b) => Array.from(b.vectors)));
    expect(r.map((b) => Array.from(b.textVectors!))).toEqual(l.map((b) => Array.from(b.textVectors!)));
    expect(r.map((b) => b.metadata)).toEqual(l.map((b) => b.metadata));
  });

  it('a prefix with nothing under it is an embedding folder not found, naming the URL', async () => {
    await expect(openEmbeddingFolder('s3://emb/nothing')).rejects.toMatchObject({
      code: 'INPUT_NOT_FOUND',
      message: expect.stringMatching(/no embedding folder at s3:\/\/emb\/nothing/),
    });
  });

  it('clipstream index --embeddings s3://… builds the index the local folder builds', async () => {
    const dir = await tempDir();
    await makeFolder(join(dir, 'emb'), 2, 30);
    await upload(join(dir, 'emb'), 's3://emb/cli');
    const code = await new Promise<number | null>((done) => {
      const child = spawn(
        process.execPath,
        [resolve('dist/cli/main.js'), 'index', '--embeddings', 's3://emb/cli', '--output', join(dir, 'index')],
        { stdio: 'ignore', env: { ...process.env, ...s3.env } },
      );
      child.on('close', done);
    });
    expect(code).toBe(0);
    const info = JSON.parse(await readFile(join(dir, 'index', 'clipstream.json'), 'utf8')) as { count: number };
    expect(info.count).toBe(60);
  });
});
