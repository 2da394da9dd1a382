import { hostname } from 'node:os';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { isClipstreamError } from '../core/errors.js';
import { emptyDelta } from '../download/progress.js';
import { SHARDS_PER_PROCESS } from '../download/runner.js';
import type { ShardStats } from '../sink/index.js';
import { connectQueue, KEY_PREFIX, SHARD_QUEUE } from './connection.js';
import { bullConnection, type ShardJobData } from './jobs.js';
import { startHeartbeat, type WorkerActivity } from './heartbeat.js';
import { addLive, getRun, recordDone, recordFailed } from './runs.js';
import { makeRunSlot, type RunSlot } from './slots.js';

export interface QueueWorkerOptions {
  queue: string;
  /** Worker threads per run, as `download --processes-count`. */
  processesCount: number;
  /** A worker silent this long loses its shards to another (BullMQ's lock; renewed at half of it). */
  lockDurationMs: number;
  /** Shown by `jobs status`. Default host:pid. */
  name?: string;
  /** Stop taking shards; the ones in flight finish, then `runWorker` returns. */
  stop: AbortSignal;
  /** Give the shards in flight back to the queue now (another worker takes them). */
  giveBack: AbortSignal;
  onEvent?: (line: string) => void;
}

/**
 * `clipstream worker`: takes shard jobs from the queue and runs them with the same shard code as a single-machine
 * download (worker threads, the sink, publishing stats last), `processesCount × 4` shards at a time as the local
 * runner does. BullMQ's lock is the heartbeat: a worker that dies (kill -9, a lost machine) stops renewing it and
 * its shards go back to the queue after `lockDurationMs`; the retaken shard is rewritten and published whole.
 */
export async function runWorker(o: QueueWorkerOptions): Promise<WorkerActivity> {
  const redis = await connectQueue(o.queue);
  const name = o.name ?? `${hostname()}:${process.pid}`;
  const slots = new Map<string, Promise<RunSlot>>();
  const activity: WorkerActivity = {
    name,
    processes: o.processesCount,
    active: new Set(),
    samples: 0,
    done: 0,
    failed: 0,
  };
  const inFlight = new Map<string, AbortController>();
  const worker = new Worker<ShardJobData, ShardStats>(
    SHARD_QUEUE,
    (job, token) => processShard(job, token ?? '', { redis, slots, activity, inFlight, o }),
    {
      connection: bullConnection(o.queue),
      prefix: KEY_PREFIX,
      concurrency: o.processesCount * SHARDS_PER_PROCESS,
      lockDuration: o.lockDurationMs,
      stalledInterval: o.lockDurationMs,
      maxStalledCount: 2,
      name,
    },
  );
  worker.on('error', () => {}); // connection errors while Redis restarts: BullMQ reconnects
  worker.on('failed', (job, err) => {
    if (!job || err instanceof WaitingError) return;
    activity.failed++;
    o.onEvent?.(`shard ${job.data.shardId} of run ${job.data.runId} failed: ${err.message}`);
    if (err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1)) {
      recordFailed(redis, job.data.runId, job.data.shardId, err.message).catch(() => {});
    }
  });
  const heartbeat = startHeartbeat(redis, activity, {
    flush: () => flushLive(redis, slots),
    runs: () => [...slots.keys()],
    cancel: (runId) => cancelRun(runId, inFlight),
    // a run that is over frees its worker threads or model once its last shard here has stopped
    ended: async (runId) => {
      if (!slots.has(runId) || [...inFlight.keys()].some((id) => id.startsWith(`${runId}-`))) return;
      await dropSlot(runId, slots);
      o.onEvent?.(`run ${runId} is over: its worker threads (or model) are closed`);
    },
  });
  const giveBack = () => inFlight.forEach((c) => c.abort(new WaitingError('given back')));
  o.giveBack.addEventListener('abort', giveBack, { once: true });
  await new Promise<void>((resolve) => {
    if (o.stop.aborted) resolve();
    o.stop.addEventListener('abort', () => resolve(), { once: true });
  });
  await worker.close();
  await heartbeat.stop();
  await flushLive(redis, slots).catch(() => {});
  await Promise.all([...slots.keys()].map((id) => dropSlot(id, slots)));
  redis.disconnect();
  return activity;
}

interface ShardScope {
  redis: Redis;
  slots: Map<string, Promise<RunSlot>>;
  activity: WorkerActivity;
  inFlight: Map<string, AbortController>;
  o: QueueWorkerOptions;
}

async function processShard(job: Job<ShardJobData>, token: string, s: ShardScope): Promise<ShardStats> {
  const { runId, shardId } = job.data;
  const slot = await slotFor(runId, s);
  const controller = new AbortController();
  s.inFlight.set(job.id!, controller);
  const label = `${runId}/${shardId}`;
  s.activity.active.add(label);
  s.o.onEvent?.(`shard ${shardId} of run ${runId}: started`);
  try {
    const { stats, cleanup } = await untilAborted(slot.process(job.data), controller.signal);
    await recordDone(s.redis, runId, shardId, stats);
    await cleanup();
    s.activity.done++;
    s.o.onEvent?.(`shard ${shardId} of run ${runId}: done, ${stats.successes}/${stats.count} ok`);
    return stats;
  } catch (err) {
    if (err instanceof WaitingError) {
      await job.moveToWait(token);
      s.o.onEvent?.(`shard ${shardId} of run ${runId}: given back to the queue`);
    }
    if (isClipstreamError(err) && err.code === 'WORKER_FAILED') await dropSlot(runId, s.slots);
    throw err;
  } finally {
    s.inFlight.delete(job.id!);
    s.activity.active.delete(label);
  }
}

/**
 * The run's slot: its record read once, its worker threads or model made on first use. The promise is what is
 * kept, so the shards that start together share one slot (four concurrent first shards once made four sets of
 * threads).
 */
function slotFor(runId: string, s: ShardScope): Promise<RunSlot> {
  let slot = s.slots.get(runId);
  if (slot === undefined) {
    slot = (async () => {
      const run = await getRun(s.redis, runId);
      if (run === undefined) throw new UnrecoverableError(`run ${runId} is not in the queue's Redis any more`);
      if (run.state === 'cancelled') throw new UnrecoverableError(`run ${runId} was cancelled`);
      return makeRunSlot(run, (n) => (s.activity.samples += n));
    })();
    s.slots.set(runId, slot);
    slot.catch(() => s.slots.delete(runId));
  }
  return slot;
}

/** A run whose worker thread died gets new threads for its next shard. */
async function dropSlot(runId: string, slots: Map<string, Promise<RunSlot>>): Promise<void> {
  const slot = slots.get(runId);
  slots.delete(runId);
  await (await slot?.catch(() => undefined))?.close();
}

/** Shards of a cancelled run stop where they are (failed for good: the run is over). */
function cancelRun(runId: string, inFlight: Map<string, AbortController>): void {
  for (const [jobId, controller] of inFlight) {
    if (jobId.startsWith(`${runId}-`)) controller.abort(new UnrecoverableError(`run ${runId} was cancelled`));
  }
}

/** The live counts of every run since the last flush, added to the runs' progress counters in Redis. */
async function flushLive(redis: Redis, slots: Map<string, Promise<RunSlot>>): Promise<void> {
  for (const [runId, pending] of slots) {
    const slot = await pending.catch(() => undefined);
    if (slot === undefined) continue;
    const d = slot.live;
    if (d.successes + d.failedToDownload + d.failedToResize === 0) continue;
    slot.live = emptyDelta();
    await addLive(redis, runId, d);
  }
}

function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => {}); // a shard given back may still fail in its thread; nobody waits for it then
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
