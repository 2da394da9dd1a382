import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { explainNoSuccess } from '../download/diagnose.js';
import { parseDownloadOptions, type DownloadOptions, type DownloadOptionsInput } from '../download/options.js';
import { shardTarget, type ShardTarget } from '../sink/index.js';
import { listOptionsOf, prepareOutputFolder, shardTasks, type DownloadSummary } from '../download/run.js';
import type { ShardTask } from '../download/shard.js';
import { inspectUrlList, readUrlList } from '../io/url-list.js';
import { encodeValue } from './codec.js';
import { connectQueue } from './connection.js';
import { followRun, type FollowHooks } from './follow.js';
import { jobIdOf, openShardQueue, shardInputName, type ShardJobData } from './jobs.js';
import { createRun, getRun, runIdOf, updateRun, type RunCounts, type RunRecord } from './runs.js';

export interface QueuedDownloadHooks extends FollowHooks {
  /** Called once the run is known: started afresh, or re-attached. */
  onRun?: (run: RunRecord, attached: boolean) => void;
}

/** How a queued run ended, as the head saw it. */
export interface RunOutcome {
  run: RunRecord;
  counts: RunCounts;
  /** Every shard done or failed for good. */
  finished: boolean;
  /** Following stopped first (Ctrl-C); the run goes on. */
  detached: boolean;
  /** Cancelled (jobs cancel) with this many shards neither done nor failed. */
  cancelledShards: number | undefined;
}

/**
 * The head's part of any queued run: re-attaches to the run of this output if it is still going, else starts it
 * (`start` enqueues its shards), follows it, and closes it when every shard is done or failed for good.
 */
export async function runOnQueue(
  queueUrl: string,
  output: string,
  start: (redis: Redis, queue: Queue<ShardJobData>, id: string) => Promise<RunRecord>,
  hooks: QueuedDownloadHooks,
): Promise<RunOutcome> {
  const redis = await connectQueue(queueUrl);
  const queue = openShardQueue(queueUrl);
  try {
    const id = runIdOf(output);
    const existing = await getRun(redis, id);
    const attached = existing?.state === 'running' && existing.enqueued;
    const run = attached ? existing : await start(redis, queue, id);
    hooks.onRun?.(run, attached);
    const counts = await followRun(redis, queue, run, hooks);
    const failed = Object.keys(counts.failed).length;
    const finished = counts.shardsDone + failed >= run.shards;
    if (finished) await finish(redis, run, failed === 0);
    const state = (await getRun(redis, id))?.state;
    const cancelledShards = state === 'cancelled' ? Math.max(0, run.shards - counts.shardsDone - failed) : undefined;
    return { run, counts, finished, detached: !finished && state !== 'cancelled', cancelledShards };
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

/**
 * `download --distributor queue`: reads the url list once, writes each shard's rows next to the output, enqueues one
 * job per shard (workers run them: `clipstream worker`), then follows the run until every shard is done or failed.
 * The same command again re-attaches to a run still going; on a finished run it starts a new one, which skips
 * the shards that have their stats (incremental) as a single-machine download does.
 */
export async function downloadQueued(
  input: DownloadOptionsInput,
  queueUrl: string,
  hooks: QueuedDownloadHooks = {},
): Promise<DownloadSummary> {
  const options = parseDownloadOptions(input);
  const outcome = await runOnQueue(
    queueUrl,
    options.outputFolder,
    (redis, queue, id) => startRun(redis, queue, id, options),
    hooks,
  );
  const summary = summaryOf(options, outcome.run, outcome.counts);
  if (outcome.detached) summary.detached = true;
  if (outcome.cancelledShards !== undefined) summary.cancelledShards = outcome.cancelledShards;
  return summary;
}

async function startRun(
  redis: Redis,
  queue: Queue<ShardJobData>,
  id: string,
  options: DownloadOptions,
): Promise<RunRecord> {
  const listOptions = listOptionsOf(options);
  await inspectUrlList(listOptions);
  const { skip, firstShardId } = await prepareOutputFolder(options);
  await createRun(redis, id, options.outputFolder, { kind: 'download', options });
  const run = (await getRun(redis, id))!;
  const target = shardTarget(options.outputFolder);
  let pending: ShardTask[] = [];
  const flush = async () => {
    await writeInputs(target, pending, options.oomShardCount);
    await enqueue(
      queue,
      run,
      pending.map((t) => ({ shardId: t.shardId })),
    );
    run.shards += pending.length;
    pending = [];
    await updateRun(redis, id, { shards: run.shards });
  };
  for await (const task of shardTasks(readUrlList(listOptions), options.numberSamplePerShard, firstShardId)) {
    if (skip.has(task.shardId)) run.skipped++;
    else pending.push(task);
    if (pending.length >= 16) await flush();
  }
  await flush();
  run.enqueued = true;
  await updateRun(redis, id, { shards: run.shards, skipped: run.skipped, enqueued: true });
  return run;
}

/** The shards' rows next to the output, where every worker reads them. */
async function writeInputs(target: ShardTarget, tasks: ShardTask[], oomShardCount: number): Promise<void> {
  await Promise.all(tasks.map((t) => target.writeFile(shardInputName(t.shardId, oomShardCount), encodeValue(t))));
}

/** Adds shard jobs of a run; a finished job of the same shard (an earlier run) goes first. */
export async function enqueue(
  queue: Queue<ShardJobData>,
  run: RunRecord,
  tasks: { shardId: number; input?: string }[],
): Promise<void> {
  for (const t of tasks) {
    const old = await queue.getJob(jobIdOf(run.id, t.shardId));
    const state = await old?.getState();
    if (old && (state === 'completed' || state === 'failed')) await old.remove();
  }
  await queue.addBulk(
    tasks.map((t) => ({
      name: run.kind,
      data: { runId: run.id, shardId: t.shardId, ...(t.input === undefined ? {} : { input: t.input }) },
      opts: {
        jobId: jobIdOf(run.id, t.shardId),
        attempts: run.options.maxShardRetry + 1,
        backoff: { type: 'fixed', delay: 1_000 },
        removeOnComplete: { count: 1_000 },
      },
    })),
  );
}

/**
 * Every shard done or failed for good: the run is over (`jobs retry` reopens it). When none failed, the shard
 * inputs and staging folders of a local output go (failed shards keep their inputs for a retry).
 */
async function finish(redis: Redis, run: RunRecord, allDone: boolean): Promise<void> {
  if ((await getRun(redis, run.id))?.state === 'running') await updateRun(redis, run.id, { state: 'done' });
  if (allDone && !shardTarget(run.output).remote) await rm(join(run.output, '_tmp'), { recursive: true, force: true });
}

function summaryOf(options: DownloadOptions, run: RunRecord, c: RunCounts): DownloadSummary {
  const failedShards = Object.entries(c.failed)
    .map(([shardId, message]) => ({ shardId: Number(shardId), message }))
    .sort((a, b) => a.shardId - b.shardId);
  return {
    outputFolder: run.output,
    shardsWritten: c.shardsDone,
    shardsSkipped: run.skipped,
    failedShards,
    shardRetryRounds: failedShards.length > 0 ? options.maxShardRetry : 0,
    count: c.count,
    successes: c.successes,
    failedToDownload: c.failedToDownload,
    failedToResize: c.failedToResize,
    reasons: c.reasons,
    durationSeconds: (Date.now() - run.started) / 1000,
    noSuccessHint: explainNoSuccess(
      { count: c.count, successes: c.successes, reasons: c.reasons, firstUrl: undefined },
      options,
    ),
  };
}
