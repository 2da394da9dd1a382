import { parallelMapUnordered } from '../core/async.js';
import type { SampleRecord, UrlRow } from '../core/types.js';
import { inferColumnTypeOf, type ParquetColumn } from '../io/parquet-write.js';
import { openShardWriter, StatsCollector, type OutputFormat, type ShardStats } from '../sink/index.js';
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
    metaColumns: metaColumns(task.rows, ctx),
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

/** The parquet schema of a shard's metadata, in img2dataset's column order plus our `reason`. */
function metaColumns(rows: UrlRow[], ctx: ShardContext): ParquetColumn[] {
  const columns: ParquetColumn[] = [{ name: 'url', type: 'STRING' }];
  if (ctx.hasCaption) columns.push({ name: 'caption', type: 'STRING' });
  for (const name of ctx.additionalColumns) {
    columns.push({ name, type: inferColumnTypeOf(rows.map((r) => r.columns[name])) });
  }
  columns.push(
    { name: 'key', type: 'STRING' },
    { name: 'status', type: 'STRING' },
    { name: 'error_message', type: 'STRING' },
    { name: 'reason', type: 'STRING' },
    { name: 'width', type: 'INT32' },
    { name: 'height', type: 'INT32' },
    { name: 'original_width', type: 'INT32' },
    { name: 'original_height', type: 'INT32' },
  );
  if (ctx.computeHash !== 'none') columns.push({ name: ctx.computeHash, type: 'STRING' });
  return columns;
}
