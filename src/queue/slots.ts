import { UnrecoverableError } from 'bullmq';
import type { ClipModel } from '../clip/index.js';
import { shardTarget, type ShardStats } from '../sink/index.js';
import { emptyDelta, type SampleDelta } from '../download/progress.js';
import { createWorkerRunner } from '../download/runner.js';
import type { ShardTask } from '../download/shard.js';
import { decodeValue } from './codec.js';
import { shardInputName, type ShardJobData } from './jobs.js';
import type { InferenceRunOptions, RunRecord } from './runs.js';

/** A run's work on this machine: what it needs loaded once (worker threads, a model), and one shard at a time. */
export interface RunSlot {
  run: RunRecord;
  /** Samples processed since the last flush to the run's live counters. */
  live: SampleDelta;
  /** Runs one shard job; its output is published when this resolves. `cleanup` runs once its stats are recorded. */
  process(data: ShardJobData): Promise<{ stats: ShardStats; cleanup: () => Promise<void> }>;
  close(): Promise<void>;
}

/** A shard of a run too big to be a shard input: 10 000 rows are ~2 MB; refused beyond. */
const MAX_SHARD_INPUT_BYTES = 256 * 1024 * 1024;

export function makeRunSlot(run: RunRecord, onSamples: (n: number) => void): RunSlot {
  return run.kind === 'download' ? downloadSlot(run, onSamples) : inferenceSlot(run, run.options, onSamples);
}

function addDelta(into: SampleDelta, d: SampleDelta): void {
  into.successes += d.successes;
  into.failedToDownload += d.failedToDownload;
  into.failedToResize += d.failedToResize;
}

/** Download shards: the rows from `_tmp/`, the single-machine shard code on worker threads, staged and published. */
function downloadSlot(run: RunRecord & { kind: 'download' }, onSamples: (n: number) => void): RunSlot {
  const target = shardTarget(run.output);
  const slot: RunSlot = {
    run,
    live: emptyDelta(),
    async process({ shardId }) {
      const inputName = shardInputName(shardId, run.options.oomShardCount);
      const bytes = await target.readFile(inputName, MAX_SHARD_INPUT_BYTES);
      if (bytes === undefined) {
        throw new UnrecoverableError(`its input ${inputName} is missing in ${target.url} (the head writes it)`);
      }
      const task = decodeValue<ShardTask>(bytes, `${target.url}/${inputName}`);
      const stats = await runner.run(task);
      return { stats, cleanup: () => target.removeFiles([inputName]) };
    },
    close: () => runner.close(),
  };
  const runner = createWorkerRunner(
    run.options,
    (d) => {
      addDelta(slot.live, d);
      onSamples(d.successes + d.failedToDownload + d.failedToResize);
    },
    { staged: true },
  );
  return slot;
}

/**
 * Inference partitions: one tar each, embedded with the run's model (loaded on the first partition, then kept),
 * one partition at a time (the model's runtime already uses every core), written as `inference` writes them.
 */
function inferenceSlot(run: RunRecord, o: InferenceRunOptions, onSamples: (n: number) => void): RunSlot {
  let model: Promise<ClipModel> | undefined;
  let turn: Promise<unknown> = Promise.resolve();
  const slot: RunSlot = {
    run,
    live: emptyDelta(),
    process(data) {
      const mine = turn.then(async () => {
        // loaded here, not at import: a download worker never loads the CLIP runtime
        const { embedPartition, tarPartition } = await import('../inference/run.js');
        const { loadClipModel } = await import('../clip/index.js');
        // a failed load is not kept: the shard's retry (or the next partition) loads again
        model ??= loadClipModel(o.model, { allowRemote: o.allowRemote }).catch((err: unknown) => {
          model = undefined;
          throw err;
        });
        const partition = tarPartition(data.input!, data.shardId);
        const result = await embedPartition(partition, await model, o, () => {
          slot.live.successes++;
          onSamples(1);
        });
        const stats = partitionStats(result.count, result.skipped.length);
        return { stats, cleanup: async () => {} };
      });
      turn = mine.catch(() => {});
      return mine;
    },
    async close() {
      await turn;
      await (await model?.catch(() => undefined))?.close();
    },
  };
  return slot;
}

/** An inference partition's counts as a shard's: images embedded are successes, images that do not decode failures. */
function partitionStats(embedded: number, skipped: number): ShardStats {
  const now = Date.now() / 1000;
  return {
    count: embedded + skipped,
    successes: embedded,
    failed_to_download: 0,
    failed_to_resize: skipped,
    duration: 0,
    start_time: now,
    end_time: now,
    status_dict: { success: embedded, ...(skipped > 0 ? { 'image does not decode': skipped } : {}) },
    reason_dict: skipped > 0 ? { decode_error: skipped } : {},
  };
}
