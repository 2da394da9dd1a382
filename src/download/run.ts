import { isClipstreamError } from '../core/errors.js';
import type { UrlRow } from '../core/types.js';
import { openParquet } from '../io/parquet-read.js';
import { inspectUrlList, readUrlList, type UrlListOptions } from '../io/url-list.js';
import type { ShardStats } from '../sink/index.js';
import { explainNoSuccess } from './diagnose.js';
import { parseDownloadOptions, type DownloadOptions, type DownloadOptionsInput } from './options.js';
import { shardTarget } from '../sink/index.js';
import { ProgressCounter, type SampleDelta } from './progress.js';
import { retryFailedShards, type FailedShard } from './retry.js';
import { createInProcessRunner, createWorkerRunner, type ShardRunner } from './runner.js';
import type { ShardTask } from './shard.js';

export interface DownloadSummary {
  outputFolder: string;
  shardsWritten: number;
  shardsSkipped: number;
  /** Shards still failed after the retry rounds. */
  failedShards: FailedShard[];
  /** Retry rounds run over failed shards (--max-shard-retry). */
  shardRetryRounds: number;
  count: number;
  successes: number;
  failedToDownload: number;
  failedToResize: number;
  reasons: Record<string, number>;
  durationSeconds: number;
  /** When rows were processed and none succeeded: why, and what to do (diagnose.ts). */
  noSuccessHint: string | undefined;
  /** --distributor queue: the command stopped following before the run ended (the run goes on). */
  detached?: boolean;
  /** --distributor queue: the run was cancelled (jobs cancel) with this many shards neither done nor failed. */
  cancelledShards?: number;
}

export interface DownloadHooks {
  /** Called once the counter exists, so a caller can render progress while the job runs. */
  onStart?: (progress: ProgressCounter, options: DownloadOptions) => void;
  signal?: AbortSignal;
  /** Called before each retry round over failed shards. */
  onShardRetry?: (round: number, shards: number) => void;
}

/**
 * img2dataset's `download()`: url list → shards of resized images + a parquet row per input + `_stats.json`.
 * Bad input is refused before anything is written. A shard is the unit of work and of resume.
 */
export async function download(input: DownloadOptionsInput, hooks: DownloadHooks = {}): Promise<DownloadSummary> {
  const options = parseDownloadOptions(input);
  if (options.distributor === 'queue') {
    const { downloadQueued } = await import('../queue/head.js');
    return downloadQueued(options, options.queue!, {
      signal: hooks.signal,
      onCounter: (counter) => hooks.onStart?.(counter, options),
    });
  }
  const listOptions = listOptionsOf(options);
  const files = await inspectUrlList(listOptions);

  const { skip, firstShardId } = await prepareOutputFolder(options);
  const progress = new ProgressCounter();
  hooks.onStart?.(progress, options);
  void countRows(listOptions, files).then(
    (n) => n !== undefined && progress.setInputRows(n),
    () => {},
  );

  const onDelta = progress.add.bind(progress);
  const runner: ShardRunner =
    options.processesCount > 1 ? createWorkerRunner(options, onDelta) : createInProcessRunner(options, onDelta);
  let job: JobOutcome;
  try {
    job = await runJob(options, listOptions, runner, { progress, skip, firstShardId }, hooks);
  } finally {
    await runner.close();
  }

  const snap = job.completed.snapshot();
  return {
    outputFolder: options.outputFolder,
    shardsWritten: job.written,
    shardsSkipped: progress.snapshot().shardsSkipped,
    failedShards: job.failed,
    shardRetryRounds: job.rounds,
    count: snap.done,
    successes: snap.successes,
    failedToDownload: snap.failedToDownload,
    failedToResize: snap.failedToResize,
    reasons: snap.reasons,
    durationSeconds: progress.snapshot().elapsedSeconds,
    noSuccessHint: explainNoSuccess(
      { count: snap.done, successes: snap.successes, reasons: snap.reasons, firstUrl: job.firstUrl },
      options,
    ),
  };
}

/** What the url list is read with: the input columns the options ask for. */
export function listOptionsOf(options: DownloadOptions): UrlListOptions {
  return {
    urlList: options.urlList,
    inputFormat: options.inputFormat,
    urlCol: options.urlCol,
    captionCol: options.captionCol,
    additionalColumns: [
      ...new Set([
        ...options.saveAdditionalColumns,
        ...[options.bboxCol, options.verifyHash?.[0]].filter((c) => c !== undefined),
      ]),
    ],
  };
}

interface JobOutcome {
  /** What completed shards wrote (their stats): a shard that failed and ran again counts once. */
  completed: ProgressCounter;
  written: number;
  failed: FailedShard[];
  rounds: number;
  firstUrl: string | undefined;
}

/** The main pass over every shard, then the retry rounds over the failed ones (--max-shard-retry). */
async function runJob(
  options: DownloadOptions,
  listOptions: UrlListOptions,
  runner: ShardRunner,
  { progress, skip, firstShardId }: { progress: ProgressCounter; skip: Set<number>; firstShardId: number },
  hooks: DownloadHooks,
): Promise<JobOutcome> {
  const perShard = options.numberSamplePerShard;
  const tasksFrom = (startIndex: number) => shardTasks(readUrlList(listOptions, startIndex), perShard, firstShardId);
  const job: JobOutcome = { completed: new ProgressCounter(), written: 0, failed: [], rounds: 0, firstUrl: undefined };
  const pass = async (tasks: AsyncIterable<ShardTask>) => {
    const r = await runShards(tasks, runner, { progress, completed: job.completed }, hooks.signal, (task) => {
      if (task.rows[0]?.index === 0) job.firstUrl = task.rows[0].url;
      return !skip.has(task.shardId);
    });
    job.written += r.done.length;
    return r;
  };
  const first = await pass(tasksFrom(0));
  const retried = await retryFailedShards(
    first.failed,
    hooks.signal?.aborted ? 0 : options.maxShardRetry,
    async (failed) => {
      if (hooks.signal?.aborted) return failed;
      // Read again from the url list (from the first failed shard's first row), not kept in memory.
      const ids = new Set(failed.map((f) => f.shardId));
      const r = await pass(onlyShards(tasksFrom((Math.min(...ids) - firstShardId) * perShard), ids));
      // A shard neither done nor failed again was not reached (stopped): it stays failed as it was.
      const again = new Map(r.failed.map((f) => [f.shardId, f]));
      return failed.filter((f) => !r.done.includes(f.shardId)).map((f) => again.get(f.shardId) ?? f);
    },
    hooks.onShardRetry,
  );
  return { ...job, failed: retried.failed, rounds: retried.rounds };
}

/**
 * Runs shard tasks, `runner.capacity` at a time; `wanted` says which to run (the others are skipped shards).
 * Shards already started are complete units: they finish (or fail) before this returns, even on an abort.
 */
async function runShards(
  tasks: AsyncIterable<ShardTask>,
  runner: ShardRunner,
  { progress, completed }: { progress: ProgressCounter; completed: ProgressCounter },
  signal: AbortSignal | undefined,
  wanted: (task: ShardTask) => boolean,
): Promise<{ done: number[]; failed: FailedShard[] }> {
  const failed: FailedShard[] = [];
  const inFlight = new Set<Promise<void>>();
  const done: number[] = [];
  try {
    for await (const task of tasks) {
      if (signal?.aborted) break;
      if (!wanted(task)) {
        progress.shardSkipped(task.rows.length);
        continue;
      }
      while (inFlight.size >= runner.capacity) await Promise.race(inFlight);
      const job: Promise<void> = runner
        .run(task)
        .then(
          (stats) => {
            done.push(task.shardId);
            progress.shardDone();
            completed.add(deltaOf(stats));
          },
          (err: unknown) => {
            failed.push({ shardId: task.shardId, message: err instanceof Error ? err.message : String(err) });
          },
        )
        .finally(() => inFlight.delete(job));
      inFlight.add(job);
    }
  } finally {
    await Promise.all(inFlight);
  }
  return { done, failed: failed.sort((a, b) => a.shardId - b.shardId) };
}

function deltaOf(stats: ShardStats): SampleDelta {
  return {
    successes: stats.successes,
    failedToDownload: stats.failed_to_download,
    failedToResize: stats.failed_to_resize,
    reasons: stats.reason_dict,
  };
}

async function* onlyShards(tasks: AsyncIterable<ShardTask>, ids: ReadonlySet<number>): AsyncGenerator<ShardTask> {
  const last = Math.max(...ids);
  for await (const task of tasks) {
    if (ids.has(task.shardId)) yield task;
    if (task.shardId >= last) return;
  }
}

/** Consecutive rows grouped into shards; shards may span input files (img2dataset #170), ids are stable. */
export async function* shardTasks(
  rows: AsyncIterable<UrlRow>,
  perShard: number,
  firstShardId: number,
): AsyncGenerator<ShardTask> {
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
 * overwrite: start from an empty folder. extend: append after the highest existing shard. Local or s3://.
 */
export async function prepareOutputFolder(o: DownloadOptions): Promise<{ skip: Set<number>; firstShardId: number }> {
  const target = shardTarget(o.outputFolder);
  await target.prepare();
  if (o.incrementalMode === 'overwrite') {
    await target.clear();
    await target.prepare();
  }
  const done = await target.listDone();
  await target.removePartial(done);
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
