import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { invalidOption } from '../core/errors.js';
import { jobsOfRun, shardOfJob, type ShardJobData } from './jobs.js';
import { clearFailed, getRun, listRuns, updateRun } from './runs.js';

/**
 * The runs a `jobs retry|cancel` applies to: the one named, or else every run still running (retry: every run with
 * failed shards too). A run id that is not there is refused with the ids that are.
 */
async function runsFor(redis: Redis, runId: string | undefined, also: (id: string) => Promise<boolean>) {
  const ids = await listRuns(redis);
  if (runId !== undefined) {
    if (!ids.includes(runId)) {
      throw invalidOption(
        `Expected a run of this queue for --run but received ${JSON.stringify(runId)} (runs: ${ids.join(', ') || 'none'})`,
      );
    }
    return [runId];
  }
  const chosen: string[] = [];
  for (const id of ids) if ((await getRun(redis, id))?.state === 'running' || (await also(id))) chosen.push(id);
  return chosen;
}

/** Failed shards go back to the queue (their attempts start again); a finished run is running again. */
export async function retryFailed(redis: Redis, queue: Queue<ShardJobData>, runId?: string) {
  const failedJobs = async (id: string) => jobsOfRun(queue, id, ['failed']);
  const retried: { runId: string; shards: number[] }[] = [];
  for (const id of await runsFor(redis, runId, async (id) => (await failedJobs(id)).length > 0)) {
    const jobs = await failedJobs(id);
    for (const job of jobs) await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    const shards = jobs.map((j) => shardOfJob(id, j.id)!).sort((a, b) => a - b);
    await clearFailed(redis, id, shards);
    if (shards.length > 0) await updateRun(redis, id, { state: 'running' });
    retried.push({ runId: id, shards });
  }
  return retried;
}

/**
 * Cancels runs: their waiting shards leave the queue, the ones in flight stop at the workers' next beat (failed:
 * the run is over). Shards already done stay; the same download command starts the run again and skips them.
 */
export async function cancelRuns(redis: Redis, queue: Queue<ShardJobData>, runId?: string) {
  const cancelled: { runId: string; removed: number }[] = [];
  for (const id of await runsFor(redis, runId, async () => false)) {
    await updateRun(redis, id, { state: 'cancelled' });
    const waiting = await jobsOfRun(queue, id, ['wait', 'delayed', 'prioritized']);
    let removed = 0;
    for (const job of waiting) {
      // a job a worker took meanwhile is locked and stays: the worker stops it at its next beat
      if (
        await job.remove().then(
          () => true,
          () => false,
        )
      )
        removed++;
    }
    cancelled.push({ runId: id, removed });
  }
  return cancelled;
}
