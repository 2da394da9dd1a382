import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { internalError, workerFailed } from '../core/errors.js';
import { isS3Url } from '../io/s3.js';
import type { ShardStats } from '../sink/index.js';
import { createShardContext, remoteStagingRoot, type ShardPlacement } from './context.js';
import type { DownloadOptions } from './options.js';
import { addToDelta, emptyDelta, type SampleDelta } from './progress.js';
import { downloadShard, type ShardTask } from './shard.js';

/** Runs shards somewhere: in this thread, or spread over worker threads (`--processes-count`). */
export interface ShardRunner {
  /** How many shards may be in flight at once. */
  readonly capacity: number;
  run(task: ShardTask): Promise<ShardStats>;
  close(): Promise<void>;
}

/**
 * Several shards per process in flight: while the slow tail of one shard (timeouts, retries) drains, the next
 * ones keep the connections busy (img2dataset processes idle at every shard end). The fetcher still caps
 * connections at --thread-count per process.
 */
export const SHARDS_PER_PROCESS = 4;

export function createInProcessRunner(
  options: DownloadOptions,
  onDelta: (d: SampleDelta) => void,
  placement: ShardPlacement = {},
): ShardRunner {
  const ctx = createShardContext(options, placement);
  return {
    capacity: SHARDS_PER_PROCESS,
    run: (task) =>
      downloadShard(task, ctx, (record) => {
        const delta = emptyDelta();
        addToDelta(delta, record);
        onDelta(delta);
      }),
    close: () => ctx.close(),
  };
}

type WorkerMessage =
  | { type: 'delta'; delta: SampleDelta }
  | { type: 'done'; shardId: number; stats: ShardStats }
  | { type: 'failed'; shardId: number; message: string; code?: string };

/** Worker threads, each with its own fetcher and event loop; sharp/libvips work runs on the shared thread pool. */
export function createWorkerRunner(
  options: DownloadOptions,
  onDelta: (d: SampleDelta) => void,
  placement: ShardPlacement = {},
): ShardRunner {
  const script = workerScript();
  roomierWorkerHeaps();
  const pending = new Map<number, { resolve: (s: ShardStats) => void; reject: (e: Error) => void; worker: Worker }>();
  const load = new Map<Worker, number>();
  const workers = Array.from({ length: options.processesCount }, () => {
    const worker = new Worker(script, { workerData: { options, placement } });
    load.set(worker, 0);
    worker.on('message', (msg: WorkerMessage) => {
      if (msg.type === 'delta') return onDelta(msg.delta);
      const entry = pending.get(msg.shardId);
      if (!entry) return;
      pending.delete(msg.shardId);
      load.set(worker, (load.get(worker) ?? 1) - 1);
      if (msg.type === 'done') entry.resolve(msg.stats);
      else entry.reject(workerFailed(`shard ${msg.shardId} failed: ${msg.message}`));
    });
    worker.on('error', (err) => failWorker(worker, err));
    worker.on('exit', (code) => {
      if (code !== 0) failWorker(worker, new Error(`worker exited with code ${code}`));
    });
    return worker;
  });

  function failWorker(worker: Worker, err: Error) {
    for (const [shardId, entry] of pending) {
      if (entry.worker !== worker) continue;
      pending.delete(shardId);
      entry.reject(workerFailed(`shard ${shardId} failed: ${err.message}`, { cause: err }));
    }
  }

  return {
    capacity: options.processesCount * SHARDS_PER_PROCESS,
    run(task) {
      const worker = [...load].sort((a, b) => a[1] - b[1])[0]![0];
      load.set(worker, (load.get(worker) ?? 0) + 1);
      return new Promise<ShardStats>((resolve, reject) => {
        pending.set(task.shardId, { resolve, reject, worker });
        worker.postMessage({ type: 'shard', task });
      });
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
      if (isS3Url(options.outputFolder)) await rm(remoteStagingRoot(), { recursive: true, force: true });
    },
  };
}

/**
 * A worker's heap starts with a ~16 MB old-generation limit, and V8 starts a full mark-compact whenever the room
 * left under it is smaller than the young generation: with a few hundred downloads in flight (each alive for
 * the latency of its server) that was one full GC per ~100 samples in bench/download (27 per 3 000 urls; V8's
 * GC threads 0.65–0.73 ms of CPU per sample). Starting the old generation at 128 MB: 7 per 3 000, 0.39–0.42 ms.
 * V8 flags are per process and read when an isolate is created, so this applies to the workers created
 * after it; a user's own --initial-old-space-size wins.
 */
function roomierWorkerHeaps(): void {
  const flag = '--initial-old-space-size';
  // V8 reads a flag with '-' or '_' between its words
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) =>
    a.replaceAll('_', '-').includes(flag),
  );
  if (!given) setFlagsFromString(`${flag}=128`);
}

/** The compiled worker next to this module; under a TypeScript test runner, the built copy in dist/. */
function workerScript(): URL {
  const here = new URL('./worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL('../../dist/download/worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw internalError('the download worker script is missing', {
    hint: 'Build first: npm run build',
  });
}
