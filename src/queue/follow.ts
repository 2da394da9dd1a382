import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { queueUnavailable } from '../core/errors.js';
import { ProgressCounter } from '../download/progress.js';
import { jobsOfRun, shardOfJob, type ShardJobData } from './jobs.js';
import { getCounts, getRun, recordFailed, type RunCounts, type RunRecord } from './runs.js';

export interface FollowHooks {
  /** Stops following; the run goes on (the same command re-attaches). */
  signal?: AbortSignal;
  /** Called once with the counter the follower feeds, so a caller can render progress. */
  onCounter?: (counter: ProgressCounter, run: RunRecord) => void;
  /** Between polls of Redis, ms. Default 250 (a poll is 5 small reads; the end of a run is seen within it). */
  pollMs?: number;
}

/**
 * How long the follower waits for a Redis that went away (a restart, a failover) before it gives up: workers
 * reconnect on their own, so the job itself survives longer outages; only this command stops waiting.
 */
export const REDIS_OUTAGE_MS = 120_000;

/**
 * Follows a run until all its shards are done or failed for good, it is cancelled, or `signal` stops the following.
 * Progress comes from Redis (counters the workers keep), never from the output folder.
 */
export async function followRun(
  redis: Redis,
  queue: Queue<ShardJobData>,
  run: RunRecord,
  hooks: FollowHooks = {},
): Promise<RunCounts> {
  const counter = new ProgressCounter();
  if (run.enqueued && run.kind === 'download') counter.setInputRows(run.shards * run.options.numberSamplePerShard);
  hooks.onCounter?.(counter, run);
  const seen = { successes: 0, failedToDownload: 0, failedToResize: 0, shards: 0 };
  for (;;) {
    const { counts, state } = await withinOutage(() => poll(redis, queue, run));
    counter.add({
      successes: counts.live.successes - seen.successes,
      failedToDownload: counts.live.failedToDownload - seen.failedToDownload,
      failedToResize: counts.live.failedToResize - seen.failedToResize,
      reasons: {},
    });
    Object.assign(seen, counts.live);
    for (; seen.shards < counts.shardsDone; seen.shards++) counter.shardDone();
    const failed = Object.keys(counts.failed).length;
    if (state !== 'running' || counts.shardsDone + failed >= run.shards || hooks.signal?.aborted) return counts;
    await new Promise((r) => setTimeout(r, hooks.pollMs ?? 250));
  }
}

async function poll(redis: Redis, queue: Queue<ShardJobData>, run: RunRecord) {
  await syncFailed(redis, queue, run);
  const [counts, record] = await Promise.all([getCounts(redis, run.id), getRun(redis, run.id)]);
  return { counts, state: record?.state ?? 'cancelled' };
}

/**
 * Shards whose job failed for good (attempts used up, or stalled too often: BullMQ's stalled checker fails those
 * without a worker to tell) are recorded in the run's failed list. Cheap when nothing failed: one count.
 */
async function syncFailed(redis: Redis, queue: Queue<ShardJobData>, run: RunRecord): Promise<void> {
  if ((await queue.getJobCountByTypes('failed')) === 0) return;
  for (const job of await jobsOfRun(queue, run.id, ['failed'])) {
    const shardId = shardOfJob(run.id, job.id)!;
    await recordFailed(redis, run.id, shardId, job.failedReason || 'failed');
  }
}

/** Runs a Redis call, failing with QUEUE_UNAVAILABLE when Redis does not answer within REDIS_OUTAGE_MS. */
async function withinOutage<T>(call: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          queueUnavailable(`the queue's Redis has not answered for ${REDIS_OUTAGE_MS / 1000} s`, {
            hint: 'The job goes on when Redis is back (workers reconnect); run the same command again to re-attach.',
          }),
        ),
      REDIS_OUTAGE_MS,
    );
  });
  try {
    return await Promise.race([call(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
