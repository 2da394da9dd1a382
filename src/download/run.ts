import { mkdir, rm } from 'node:fs/promises';
import { ClipstreamError, isClipstreamError } from '../core/errors.js';
import type { UrlRow } from '../core/types.js';
import { openParquet } from '../io/parquet-read.js';
import { inspectUrlList, readUrlList, type UrlListOptions } from '../io/url-list.js';
import { listDoneShards, removePartialShards } from '../sink/index.js';
import { parseDownloadOptions, type DownloadOptions, type DownloadOptionsInput } from './options.js';
import { ProgressCounter } from './progress.js';
import { createInProcessRunner, createWorkerRunner, type ShardRunner } from './runner.js';
import type { ShardTask } from './shard.js';

export interface DownloadSummary {
  outputFolder: string;
  shardsWritten: number;
  shardsSkipped: number;
  failedShards: { shardId: number; message: string }[];
  count: number;
  successes: number;
  failedToDownload: number;
  failedToResize: number;
  reasons: Record<string, number>;
  durationSeconds: number;
}

export interface DownloadHooks {
  /** Called once the counter exists, so a caller can render progress while the job runs. */
  onStart?: (progress: ProgressCounter, options: DownloadOptions) => void;
  signal?: AbortSignal;
}

/**
 * img2dataset's `download()`: url list → shards of resized images + a parquet row per input + `_stats.json`.
 * Bad input is refused before anything is written. A shard is the unit of work and of resume.
 */
export async function download(input: DownloadOptionsInput, hooks: DownloadHooks = {}): Promise<DownloadSummary> {
  const options = parseDownloadOptions(input);
  const listOptions: UrlListOptions = {
    urlList: options.urlList,
    inputFormat: options.inputFormat,
    urlCol: options.urlCol,
    captionCol: options.captionCol,
    additionalColumns: [...new Set([...options.saveAdditionalColumns, ...(options.verifyHash ? [options.verifyHash[0]] : [])])],
  };
  const files = await inspectUrlList(listOptions);

  const { skip, firstShardId } = await prepareOutputFolder(options);
  const progress = new ProgressCounter();
  hooks.onStart?.(progress, options);
  void countRows(listOptions, files).then((n) => n !== undefined && progress.setInputRows(n), () => {});

  const onDelta = progress.add.bind(progress);
  const runner: ShardRunner =
    options.processesCount > 1 ? createWorkerRunner(options, onDelta) : createInProcessRunner(options, onDelta);
  const failedShards: DownloadSummary['failedShards'] = [];
  const inFlight = new Set<Promise<void>>();
  let shardsWritten = 0;
  try {
    for await (const task of shardTasks(readUrlList(listOptions), options.numberSamplePerShard, firstShardId)) {
      if (hooks.signal?.aborted) break;
      if (skip.has(task.shardId)) {
        progress.shardSkipped(task.rows.length);
        continue;
      }
      while (inFlight.size >= runner.capacity) await Promise.race(inFlight);
      const job: Promise<void> = runner
        .run(task)
        .then(
          () => {
            shardsWritten++;
            progress.shardDone();
          },
          (err: unknown) => {
            failedShards.push({ shardId: task.shardId, message: err instanceof Error ? err.message : String(err) });
          },
        )
        .finally(() => inFlight.delete(job));
      inFlight.add(job);
    }
  } finally {
    // Shards already started are complete units: let them finish (or fail) before reporting or rethrowing.
    await Promise.all(inFlight);
    await runner.close();
  }

  const snap = progress.snapshot();
  return {
    outputFolder: options.outputFolder,
    shardsWritten,
    shardsSkipped: snap.shardsSkipped,
    failedShards,
    count: snap.done,
    successes: snap.successes,
    failedToDownload: snap.failedToDownload,
    failedToResize: snap.failedToResize,
    reasons: snap.reasons,
    durationSeconds: snap.elapsedSeconds,
  };
}

/** Consecutive rows grouped into shards; shards may span input files (img2dataset #170), ids are stable. */
export async function* shardTasks(rows: AsyncIterable<UrlRow>, perShard: number, firstShardId: number): AsyncGenerator<ShardTask> {
  let current: UrlRow[] = [];
  let currentId = -1;
  for await (const row of rows) {
    const shardId = firstShardId + Math.floor(row.index / perShard);
    if (shardId !== currentId && current.length > 0) {
      yield { shardId: currentId, rows: current };
      current = [];
    }
    currentId = shardId;
    current.push(row);
  }
  if (current.length > 0) yield { shardId: currentId, rows: current };
}

/**
 * incremental: shards with a stats file are done and skipped; leftovers of interrupted shards are removed.
 * overwrite: start from an empty folder. extend: append after the highest existing shard.
 */
async function prepareOutputFolder(o: DownloadOptions): Promise<{ skip: Set<number>; firstShardId: number }> {
  if (o.incrementalMode === 'overwrite') await rm(o.outputFolder, { recursive: true, force: true });
  try {
    await mkdir(o.outputFolder, { recursive: true });
  } catch (err) {
    throw new ClipstreamError('OUTPUT_CONFLICT', `cannot create the output folder ${o.outputFolder}: ${(err as Error).message}`, {
      hint: 'Choose another --output-folder or fix its permissions.',
    });
  }
  const done = await listDoneShards(o.outputFolder);
  await removePartialShards(o.outputFolder, done);
  if (o.incrementalMode === 'extend') {
    return { skip: new Set(), firstShardId: done.size === 0 ? 0 : Math.max(...done) + 1 };
  }
  return { skip: done, firstShardId: 0 };
}

/**
 * Counts input rows in the background so the progress bar can show an ETA: parquet footers say it for free, text
 * formats are read once more (streamed). Gives up quietly on errors: the main read reports them.
 */
async function countRows(listOptions: UrlListOptions, files: string[]): Promise<number | undefined> {
  if (listOptions.inputFormat === 'parquet') {
    let total = 0;
    for (const file of files) {
      const parquet = await openParquet(file);
      total += parquet.numRows;
      await parquet.close();
    }
    return total;
  }
  let n = 0;
  try {
    for await (const _ of readUrlList({ ...listOptions, additionalColumns: [], captionCol: undefined })) n++;
  } catch (err) {
    if (isClipstreamError(err)) return undefined;
    throw err;
  }
  return n;
}
