import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { KEY_PREFIX } from './connection.js';
import { getRun } from './runs.js';

/** What a worker tells `jobs status` about itself. */
export interface WorkerActivity {
  name: string;
  processes: number;
  /** `run/shard` of the shards in flight. */
  active: Set<string>;
  /** Samples processed since start. */
  samples: number;
  done: number;
  failed: number;
}

/** A worker's line in `{p}:workers` (a hash: name → this, as JSON). */
export interface WorkerBeat {
  name: string;
  host: string;
  pid: number;
  processes: number;
  active: string[];
  samples: number;
  /** Samples per second over the last RATE_WINDOW_MS. */
  rate: number;
  done: number;
  failed: number;
  /** Epoch ms of this beat; a worker silent for STALE_AFTER_MS is shown as gone. */
  at: number;
}

export const WORKERS_KEY = `${KEY_PREFIX}:workers`;
export const BEAT_MS = 2_000;
export const STALE_AFTER_MS = 15_000;
const RATE_WINDOW_MS = 10_000;

interface BeatHooks {
  /** Pushes the live sample counts to the runs' counters. */
  flush: () => Promise<void>;
  /** Runs this worker has shards of. */
  runs: () => string[];
  /** Called for a run found cancelled. */
  cancel: (runId: string) => void;
  /** Called for a run found over (done, cancelled, or gone from Redis): its slot may go. */
  ended: (runId: string) => Promise<void>;
}

/** Every BEAT_MS: the worker's line with its rate, the live counts, and a look for cancelled runs. */
export function startHeartbeat(redis: Redis, a: WorkerActivity, hooks: BeatHooks) {
  const history: { at: number; samples: number }[] = [];
  const beat = async () => {
    const now = Date.now();
    history.push({ at: now, samples: a.samples });
    while (history.length > 1 && now - history[0]!.at > RATE_WINDOW_MS) history.shift();
    const first = history[0]!;
    const rate = now > first.at ? ((a.samples - first.samples) * 1000) / (now - first.at) : 0;
    const line: WorkerBeat = {
      name: a.name,
      host: hostname(),
      pid: process.pid,
      processes: a.processes,
      active: [...a.active],
      samples: a.samples,
      rate,
      done: a.done,
      failed: a.failed,
      at: now,
    };
    await redis.hset(WORKERS_KEY, a.name, JSON.stringify(line));
    await hooks.flush();
    for (const runId of hooks.runs()) {
      const state = (await getRun(redis, runId))?.state;
      if (state === 'cancelled') hooks.cancel(runId);
      if (state !== 'running') await hooks.ended(runId);
    }
  };
  let running: Promise<void> = beat().catch(() => {});
  const timer = setInterval(() => {
    running = running.then(() => beat().catch(() => {})); // Redis away: the next beat tries again
  }, BEAT_MS);
  return {
    async stop() {
      clearInterval(timer);
      await running;
      await redis.hdel(WORKERS_KEY, a.name).catch(() => {});
    },
  };
}
