import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeColorClip } from '../../src/clip/index.js';
import { openEmbeddingFolder, readEmbeddingBatches } from '../../src/io/embedding-folder.js';
import { runInference } from '../../src/inference/run.js';
import { s3Put } from '../../src/io/s3.js';
import { startImageServer, type ImageServer } from '../helpers/image-server.js';
import { startRedis, startS3Server, type RedisServer, type S3Server } from '../helpers/services.js';
import { tempDir } from '../helpers/tmp.js';
import { downloadFlags, run, startWorker, stopWorkers, writeList, type WorkerProcess } from './helpers.js';

/** `inference --distributor queue` from tars on S3 to an embedding folder on S3, by two workers. */

let images: ImageServer;
let redis: RedisServer;
let s3: S3Server;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  [images, redis, s3] = await Promise.all([startImageServer(), startRedis(), startS3Server()]);
  await s3.createBucket('inf');
}, 600_000);
afterEach(async () => {
  await stopWorkers(workers.splice(0));
});
afterAll(async () => {
  await Promise.all([images?.close(), redis?.stop(), s3?.stop()]);
});

async function vectorsOf(root: string) {
  const folder = await openEmbeddingFolder(root);
  const out: { partition: string; path: unknown; vector: number[] }[] = [];
  for await (const b of readEmbeddingBatches(folder, { batchRows: 64 })) {
    b.metadata.forEach((meta, i) =>
      out.push({
        partition: b.partition,
        path: meta.image_path,
        vector: Array.from(b.vectors.subarray(i * folder.dim, (i + 1) * folder.dim)),
      }),
    );
  }
  return out;
}

describe('inference --distributor queue', () => {
  it('workers embed every tar of an s3:// input into an s3:// folder equal to a local inference', async () => {
    const dir = await tempDir();
    const list = await writeList(dir, images, 36);
    expect((await run(downloadFlags(list, join(dir, 'shards')))).code).toBe(0);
    for (const name of (await readdir(join(dir, 'shards'))).filter((n) => n.endsWith('.tar'))) {
      await s3Put(`s3://inf/shards/${name}`, { file: join(dir, 'shards', name) });
    }
    const model = await writeColorClip(join(dir, 'model'));
    const env = { ...process.env, ...s3.env };
    workers.push(startWorker(redis.url, 'inf-1', [], env), startWorker(redis.url, 'inf-2', [], env));
    const args = ['inference', '--input', 's3://inf/shards', '--output-folder', 's3://inf/emb', '--model', model];
    const head = await run([...args, '--distributor', 'queue', '--queue', redis.url, '--batch-size', '8'], env);
    expect(head.stderr).not.toMatch(/error/i);
    expect(head.code).toBe(0);
    expect(head.stdout).toMatch(/done: 32 images embedded into 4 partition\(s\)/);

    await runInference({ input: join(dir, 'shards'), outputFolder: join(dir, 'emb'), model, batchSize: 8 });
    const [remote, local] = [await vectorsOf('s3://inf/emb'), await vectorsOf(join(dir, 'emb'))];
    expect(remote.map((r) => [r.partition, r.path])).toEqual(local.map((r) => [r.partition, r.path]));
    remote.forEach((r, i) => r.vector.forEach((v, j) => expect(v).toBeCloseTo(local[i]!.vector[j]!, 2)));

    // again: every partition has its metadata, nothing to do
    const again = await run([...args, '--distributor', 'queue', '--queue', redis.url], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/0 images embedded into 0 partition\(s\) of s3:\/\/inf\/emb, 4 already done/);
  });

  it('an image folder is refused with --distributor queue (workers read tars where they are)', async () => {
    const dir = await tempDir();
    const list = await writeList(dir, images, 3);
    expect((await run([...downloadFlags(list, join(dir, 'files')), '--output-format', 'files'])).code).toBe(0);
    const model = await writeColorClip(join(dir, 'model'));
    const refused = await run([
      'inference',
      '--input',
      join(dir, 'files', '00000'),
      '--output-folder',
      join(dir, 'emb'),
      '--model',
      model,
      '--distributor',
      'queue',
      '--queue',
      redis.url,
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/Expected webdataset tars for --input with --distributor queue/);
  });
});
