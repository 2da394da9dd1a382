import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import type { Redis } from 'ioredis';
import type { DownloadOptions } from '../download/options.js';
import type { SampleDelta } from '../download/progress.js';
import { isS3Url } from '../io/s3.js';
import type { ShardStats } from '../sink/index.js';
import { decodeValue, encodeValue } from './codec.js';
import { KEY_PREFIX } from './connection.js';

/**
 * A run: one `download` (or `inference`) `--distributor queue` job, named after its output folder (the same command again re-attaches
 * to it). Its record and counters live in Redis next to BullMQ's keys:
 *   {p}:runs                  sorted set of run ids by start time
 *   {p}:run:{id}              hash: kind, output, options, shards, skipped, enqueued, state, started
 *   {p}:run:{id}:done         hash: shard id → its stats json (what the worker published)
 *   {p}:run:{id}:counts       hash: shards_done, count, successes, failed_to_download, failed_to_resize
 *   {p}:run:{id}:reasons      hash: failure reason → samples
 *   {p}:run:{id}:failed       hash: shard id → why it failed, once it failed --max-shard-retry + 1 times
 *   {p}:run:{id}:live         hash: samples processed so far, shards in flight included (for progress only)
 * Invariant: counts and reasons are the sums over `done` (recordDone replaces a shard's old stats atomically).
 */
export const RUN_FORMAT = 1;

export type RunState = 'running' | 'done' | 'cancelled';

/** `inference --distributor queue`: what every worker needs to embed one tar of the input. */
export interface InferenceRunOptions {
  input: string;
  outputFolder: string;
  /** A model folder at the same path on every worker, or a hub id with allowRemote. */
  model: string;
  allowRemote: boolean;
  batchSize: number;
  maxShardRetry: number;
}

/** What a run does: a download's shards, or an inference's partitions (one tar each). */
export type RunJob =
  { kind: 'download'; options: DownloadOptions } | { kind: 'inference'; options: InferenceRunOptions };

export type RunRecord = RunJob & {
  id: string;
  output: string;
  /** Shards enqueued (known once `enqueued`). */
  shards: number;
  /** Shards skipped because they were done before the run started (incremental). */
  skipped: number;
  enqueued: boolean;
  state: RunState;
  /** Epoch ms. */
  started: number;
};

export interface RunCounts {
  shardsDone: number;
  count: number;
  successes: number;
  failedToDownload: number;
  failedToResize: number;
  reasons: Record<string, number>;
  failed: Record<string, string>;
  live: SampleDelta;
}

const key = (id: string, part?: string) => `${KEY_PREFIX}:run:${id}${part === undefined ? '' : `:${part}`}`;
const PARTS = ['done', 'counts', 'reasons', 'failed', 'live'] as const;

/** The run id of an output folder: the same folder, the same run (local paths resolved on the head). */
export function runIdOf(output: string): string {
  const where = isS3Url(output) ? output.replace(/\/+$/, '') : resolve(output);
  return createHash('sha256').update(where).digest('hex').slice(0, 12);
}

export async function getRun(redis: Redis, id: string): Promise<RunRecord | undefined> {
  const h = await redis.hgetallBuffer(key(id));
  if (h.options === undefined) return undefined;
  const kind = String(h.kind ?? 'download') as RunJob['kind'];
  const options = decodeValue<RunJob['options']>(h.options, `the options of run ${id}`);
  return {
    ...({ kind, options } as RunJob),
    id,
    output: String(h.output),
    shards: Number(h.shards ?? 0),
    skipped: Number(h.skipped ?? 0),
    enqueued: String(h.enqueued) === '1',
    state: String(h.state) as RunState,
    started: Number(h.started ?? 0),
  };
}

/** Starts a run afresh: its old record and counters are dropped. */
export async function createRun(redis: Redis, id: string, output: string, job: RunJob): Promise<void> {
  const started = Date.now();
  await redis
    .multi()
    .del(key(id), ...PARTS.map((p) => key(id, p)))
    .hset(key(id), {
      format: RUN_FORMAT,
      kind: job.kind,
      output,
      options: encodeValue(job.options),
      shards: 0,
      skipped: 0,
      enqueued: 0,
      state: 'running',
      started,
    })
    .zadd(`${KEY_PREFIX}:runs`, started, id)
    .exec();
}

export async function updateRun(
  redis: Redis,
  id: string,
  fields: Partial<Pick<RunRecord, 'shards' | 'skipped' | 'enqueued' | 'state'>>,
): Promise<void> {
  const flat = Object.entries(fields).map(([k, v]) => [k, typeof v === 'boolean' ? (v ? 1 : 0) : v]);
  await redis.hset(key(id), Object.fromEntries(flat));
}

export async function listRuns(redis: Redis): Promise<string[]> {
  return redis.zrevrange(`${KEY_PREFIX}:runs`, 0, -1);
}

/** Replaces a shard's stats: old counts out, new ones in, in one atomic step (a shard published twice counts once). */
const RECORD_DONE = `
local function apply(json, sign)
  local s = cjson.decode(json)
  redis.call('HINCRBY', KEYS[2], 'count', sign * s.count)
  redis.call('HINCRBY', KEYS[2], 'successes', sign * s.successes)
  redis.call('HINCRBY', KEYS[2], 'failed_to_download', sign * s.failed_to_download)
  redis.call('HINCRBY', KEYS[2], 'failed_to_resize', sign * s.failed_to_resize)
  if type(s.reason_dict) == 'table' then
    for r, n in pairs(s.reason_dict) do redis.call('HINCRBY', KEYS[3], r, sign * n) end
  end
end
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then apply(old, -1) else redis.call('HINCRBY', KEYS[2], 'shards_done', 1) end
apply(ARGV[2], 1)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[1])
return old and 0 or 1
`;

export async function recordDone(redis: Redis, id: string, shardId: number, stats: ShardStats): Promise<void> {
  await redis.eval(
    RECORD_DONE,
    4,
    key(id, 'done'),
    key(id, 'counts'),
    key(id, 'reasons'),
    key(id, 'failed'),
    String(shardId),
    JSON.stringify(stats),
  );
}

export async function recordFailed(redis: Redis, id: string, shardId: number, message: string): Promise<void> {
  // a shard done by an earlier attempt (published, then its worker lost the job) is not failed
  if (await redis.hexists(key(id, 'done'), String(shardId))) return;
  await redis.hset(key(id, 'failed'), String(shardId), message);
}

export async function clearFailed(redis: Redis, id: string, shardIds: number[]): Promise<void> {
  if (shardIds.length > 0) await redis.hdel(key(id, 'failed'), ...shardIds.map(String));
}

export async function addLive(redis: Redis, id: string, d: SampleDelta): Promise<void> {
  const m = redis.multi();
  m.hincrby(key(id, 'live'), 'successes', d.successes);
  m.hincrby(key(id, 'live'), 'failed_to_download', d.failedToDownload);
  m.hincrby(key(id, 'live'), 'failed_to_resize', d.failedToResize);
  await m.exec();
}

export async function getCounts(redis: Redis, id: string): Promise<RunCounts> {
  const [counts, reasons, failed, live] = await Promise.all([
    redis.hgetall(key(id, 'counts')),
    redis.hgetall(key(id, 'reasons')),
    redis.hgetall(key(id, 'failed')),
    redis.hgetall(key(id, 'live')),
  ]);
  const n = (h: Record<string, string>, k: string) => Number(h[k] ?? 0);
  return {
    shardsDone: n(counts, 'shards_done'),
    count: n(counts, 'count'),
    successes: n(counts, 'successes'),
    failedToDownload: n(counts, 'failed_to_download'),
    failedToResize: n(counts, 'failed_to_resize'),
    reasons: Object.fromEntries(
      Object.entries(reasons)
        .map(([r, v]) => [r, Number(v)] as const)
        .filter(([, v]) => v > 0)
        .sort((a, b) => b[1] - a[1]),
    ),
    failed,
    live: {
      successes: n(live, 'successes'),
      failedToDownload: n(live, 'failed_to_download'),
      failedToResize: n(live, 'failed_to_resize'),
      reasons: {},
    },
  };
}
