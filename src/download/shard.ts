import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parallelMapUnordered } from '../core/async.js';
import type { SampleRecord, UrlRow } from '../core/types.js';
import {
  openShardWriter,
  StatsCollector,
  type OutputFormat,
  type ShardStats,
  type ShardTarget,
} from '../sink/index.js';
import { metaColumns, type MetaLayout } from './columns.js';
import { keyFormatter, shardName } from './keys.js';
import { downloadSample, type SampleContext } from './sample.js';

export interface ShardTask {
  shardId: number;
  rows: UrlRow[];
}

export interface ShardContext extends SampleContext {
  /** Where the sink writes: the output folder itself, or (with `target`) the folder of the staging folders. */
  outputFolder: string;
  /**
   * Set: each shard is written in a staging folder of its own under `outputFolder`, then published here (S3, or a
   * local folder that workers of a queue share: two attempts of a shard never write the same file).
   */
  target?: ShardTarget;
  outputFormat: OutputFormat;
  numberSamplePerShard: number;
  oomShardCount: number;
  /** How many samples of one shard are fetched and processed at once (img2dataset's thread_count). */
  threadCount: number;
  /** The json / parquet fields (columns.ts). */
  layout: MetaLayout;
}

/**
 * Downloads one shard: the unit of work, retry and resume. Samples are written in completion order; the stats
 * file is written last by the sink, so a shard either has `{id}_stats.json` or is redone on resume. With a target,
 * the shard is staged and published there (output.ts), stats last too.
 */
export async function downloadShard(
  task: ShardTask,
  ctx: ShardContext,
  onSample: (record: SampleRecord) => void = () => {},
  signal?: AbortSignal,
): Promise<ShardStats> {
  const name = shardName(task.shardId, ctx.oomShardCount);
  const target = ctx.target;
  if (target === undefined) return writeShard(task, ctx, ctx.outputFolder, onSample, signal);
  await mkdir(ctx.outputFolder, { recursive: true });
  const staging = await mkdtemp(join(ctx.outputFolder, `${name}-`));
  try {
    await target.unpublish(name);
    const stats = await writeShard(task, ctx, staging, onSample, signal);
    await target.publish(staging, name);
    return stats;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** The shard's samples through the sink into `folder`: its data files, then its stats file. */
async function writeShard(
  task: ShardTask,
  ctx: ShardContext,
  folder: string,
  onSample: (record: SampleRecord) => void,
  signal: AbortSignal | undefined,
): Promise<ShardStats> {
  const keyOf = keyFormatter(ctx.numberSamplePerShard, ctx.oomShardCount);
  const firstIndex = task.rows[0]?.index ?? 0;
  const writer = await openShardWriter({
    outputFolder: folder,
    shardName: shardName(task.shardId, ctx.oomShardCount),
    outputFormat: ctx.outputFormat,
    encodeFormat: ctx.image.encodeFormat,
    metaColumns: metaColumns(ctx.layout, task.rows),
    // staged for S3: the upload is the durable copy
    durable: ctx.target?.remote !== true,
  });
  const stats = new StatsCollector();
  try {
    const records = parallelMapUnordered(
      task.rows,
      (row) => downloadSample(row, keyOf(task.shardId, row.index - firstIndex), ctx),
      { concurrency: ctx.threadCount },
    );
    for await (const record of records) {
      if (signal?.aborted) throw signal.reason;
      await writer.write(record);
      stats.add(record);
      onSample(record);
    }
    const result = stats.finish();
    await writer.close(result);
    return result;
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
