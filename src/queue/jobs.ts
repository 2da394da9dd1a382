import { Queue, type Job } from 'bullmq';
import { KEY_PREFIX, parseQueueUrl, SHARD_QUEUE } from './connection.js';
import { shardName } from '../download/keys.js';

/** What a shard job carries: which run, which shard. Options and rows are in the run record and `_tmp/`. */
export interface ShardJobData {
  runId: string;
  shardId: number;
  /** An inference partition's tar (its shard id is the tar's position in the input). */
  input?: string;
}

/** `{runId}-{shard}`: the same shard of the same run is one job (adding it again is a no-op while it exists). */
export function jobIdOf(runId: string, shardId: number): string {
  return `${runId}-${shardId}`;
}

export function shardOfJob(runId: string, jobId: string | undefined): number | undefined {
  if (jobId === undefined || !jobId.startsWith(`${runId}-`)) return undefined;
  return Number(jobId.slice(runId.length + 1));
}

/** BullMQ's connection to `url`: reconnects forever (a Redis restart mid-job), as BullMQ requires. */
export function bullConnection(url: string) {
  return {
    ...parseQueueUrl(url),
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(200 * times, 2_000),
  };
}

export function openShardQueue(url: string): Queue<ShardJobData> {
  const queue = new Queue<ShardJobData>(SHARD_QUEUE, { connection: bullConnection(url), prefix: KEY_PREFIX });
  queue.on('error', () => {}); // reconnection errors; the calls that need Redis report them
  return queue;
}

/** The run's jobs in these states (scans the states' lists: used for failed and waiting jobs, not completed). */
export async function jobsOfRun(
  queue: Queue<ShardJobData>,
  runId: string,
  states: ('failed' | 'wait' | 'delayed' | 'prioritized' | 'active')[],
): Promise<Job<ShardJobData>[]> {
  const jobs = (await queue.getJobs(states)) as Job<ShardJobData>[];
  return jobs.filter((j) => j !== undefined && shardOfJob(runId, j.id) !== undefined);
}

/** A shard's input rows, next to the output (img2dataset's `_tmp/{shard}.feather`). */
export function shardInputName(shardId: number, oomShardCount: number): string {
  return `_tmp/${shardName(shardId, oomShardCount)}.rows`;
}
