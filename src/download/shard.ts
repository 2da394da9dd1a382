import { parallelMapUnordered } from '../core/async.js';
import type { SampleRecord, UrlRow } from '../core/types.js';
import { openShardWriter, StatsCollector, type OutputFormat, type ShardStats } from '../sink/index.js';
import { metaColumns, type MetaLayout } from './columns.js';
import { keyFormatter, shardName } from './keys.js';
import { downloadSample, type SampleContext } from './sample.js';

export interface ShardTask {
  shardId: number;
  rows: UrlRow[];
}

export interface ShardContext extends SampleContext {
  outputFolder: string;
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
 * file is written last by the sink, so a shard either has `{id}_stats.json` or is redone on resume.
 */
export async function downloadShard(
  task: ShardTask,
  ctx: ShardContext,
  onSample: (record: SampleRecord) => void = () => {},
  signal?: AbortSignal,
): Promise<ShardStats> {
  const keyOf = keyFormatter(ctx.numberSamplePerShard, ctx.oomShardCount);
  const firstIndex = task.rows[0]?.index ?? 0;
  const writer = await openShardWriter({
    outputFolder: ctx.outputFolder,
    shardName: shardName(task.shardId, ctx.oomShardCount),
    outputFormat: ctx.outputFormat,
    encodeFormat: ctx.image.encodeFormat,
    metaColumns: metaColumns(ctx.layout, task.rows),
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
