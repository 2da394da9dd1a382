import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ShardJobData } from './jobs.js';
import { STALE_AFTER_MS, WORKERS_KEY, type WorkerBeat } from './heartbeat.js';
import { getCounts, getRun, listRuns, type RunState } from './runs.js';

export interface RunStatus {
  id: string;
  output: string;
  state: RunState;
  started: number;
  /** Shards of this run: enqueued, done, failed for good, in flight on a worker, waiting. */
  shards: number;
  skipped: number;
  enqueued: boolean;
  done: number;
  failed: number;
  active: number;
  waiting: number;
  /** Samples of done shards (exact) and processed so far (shards in flight included). */
  count: number;
  successes: number;
  processed: number;
  /** Failure reasons of the samples of done shards, most frequent first. */
  reasons: Record<string, number>;
  failedShards: { shardId: number; message: string }[];
}

export interface QueueStatus {
  /** BullMQ's counts over the whole queue (every run). */
  jobs: Record<string, number>;
  runs: RunStatus[];
  /** Workers heard from in the last STALE_AFTER_MS. */
  workers: WorkerBeat[];
  /** Workers that stopped beating without saying goodbye (killed, lost). */
  silentWorkers: string[];
  /** Sum of the workers' rates. */
  samplesPerSecond: number;
}

/** Everything `jobs status` shows, and the dashboard: from Redis only (BullMQ's counts, runs, worker beats). */
export async function queueStatus(redis: Redis, queue: Queue<ShardJobData>, now = Date.now()): Promise<QueueStatus> {
  const [jobs, beats, ids] = await Promise.all([
    queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'),
    redis.hgetall(WORKERS_KEY),
    listRuns(redis),
  ]);
  const all = Object.values(beats).map((b) => JSON.parse(b) as WorkerBeat);
  const workers = all.filter((w) => now - w.at <= STALE_AFTER_MS).sort((a, b) => a.name.localeCompare(b.name));
  const silentWorkers = all.filter((w) => now - w.at > STALE_AFTER_MS).map((w) => w.name);
  const runs: RunStatus[] = [];
  for (const id of ids) {
    const status = await runStatus(redis, id, workers);
    if (status) runs.push(status);
  }
  return { jobs, runs, workers, silentWorkers, samplesPerSecond: workers.reduce((n, w) => n + w.rate, 0) };
}

async function runStatus(redis: Redis, id: string, workers: WorkerBeat[]): Promise<RunStatus | undefined> {
  const run = await getRun(redis, id);
  if (run === undefined) return undefined;
  const c = await getCounts(redis, id);
  const failed = Object.keys(c.failed).length;
  const active = workers.reduce((n, w) => n + w.active.filter((a) => a.startsWith(`${id}/`)).length, 0);
  const open = run.state === 'running' ? run.shards - c.shardsDone - failed : 0;
  return {
    id,
    output: run.output,
    state: run.state,
    started: run.started,
    shards: run.shards,
    skipped: run.skipped,
    enqueued: run.enqueued,
    done: c.shardsDone,
    failed,
    active: Math.min(active, Math.max(open, 0)),
    waiting: Math.max(open - active, 0),
    count: c.count,
    successes: c.successes,
    processed: c.live.successes + c.live.failedToDownload + c.live.failedToResize,
    reasons: c.reasons,
    failedShards: Object.entries(c.failed)
      .map(([shardId, message]) => ({ shardId: Number(shardId), message }))
      .sort((a, b) => a.shardId - b.shardId),
  };
}
