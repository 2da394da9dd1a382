import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidOption } from '../core/errors.js';
import { listPartitions, metadataName, prepareOutput, type InferenceOptions } from '../inference/run.js';
import { isS3Url, s3Join, s3Size } from '../io/s3.js';
import { enqueue, runOnQueue, type QueuedDownloadHooks, type RunOutcome } from './head.js';
import { createRun, getRun, updateRun, type InferenceRunOptions } from './runs.js';

/**
 * `inference --distributor queue`: one job per tar of the input (a folder or prefix of webdataset tars, which every
 * worker reads), each embedded by a worker with the run's model and written as `inference` writes a partition,
 * metadata last. Partitions whose metadata file exists are done (incremental). The model folder must be at the
 * same path on every worker (or a hub id with --allow-remote).
 */
export async function inferenceQueued(
  o: InferenceOptions & { maxShardRetry?: number },
  queueUrl: string,
  hooks: QueuedDownloadHooks = {},
): Promise<RunOutcome> {
  const options: InferenceRunOptions = {
    input: o.input,
    outputFolder: o.outputFolder,
    model: o.model,
    allowRemote: o.allowRemote ?? false,
    batchSize: o.batchSize ?? 32,
    maxShardRetry: o.maxShardRetry ?? 1,
  };
  return runOnQueue(
    queueUrl,
    o.outputFolder,
    async (redis, queue, id) => {
      const partitions = await listPartitions(o.input, o.partitionSize ?? 10_000);
      if (partitions.some((p) => p.source === undefined)) {
        throw invalidOption(
          `Expected webdataset tars for --input with --distributor queue but ${o.input} is a folder of images`,
          {
            hint: 'Workers read the input where it is: give a folder or s3:// prefix of .tar files (download output).',
          },
        );
      }
      await prepareOutput(o.outputFolder);
      await createRun(redis, id, o.outputFolder, { kind: 'inference', options });
      const run = (await getRun(redis, id))!;
      const tasks: { shardId: number; input: string }[] = [];
      for (const [position, p] of partitions.entries()) {
        if (await exists(o.outputFolder, metadataName(p.name))) run.skipped++;
        else tasks.push({ shardId: position, input: p.source! });
      }
      for (let i = 0; i < tasks.length; i += 100) await enqueue(queue, run, tasks.slice(i, i + 100));
      Object.assign(run, { shards: tasks.length, enqueued: true });
      await updateRun(redis, id, { shards: run.shards, skipped: run.skipped, enqueued: true });
      return run;
    },
    hooks,
  );
}

async function exists(folder: string, name: string): Promise<boolean> {
  if (isS3Url(folder)) return (await s3Size(s3Join(folder, name))) !== undefined;
  return access(join(folder, name)).then(
    () => true,
    () => false,
  );
}
