import { outputConflict } from '../core/errors.js';
import type { ParquetColumn } from '../io/parquet-write.js';
import { manifestLine, streamedSampleColumns } from '../sample/fields.js';
import type { Candidate, Plan } from '../select/plan.js';
import { openShardWriter, StatsCollector } from '../sink/index.js';
import type { CandidateContext } from './candidate.js';
import { streamPartition, type StreamSample } from './engine.js';
import { PROGRESS_FILE, streamFolderStore, type FolderProgress, type StreamFolderStore } from './folder-store.js';
import type { Partition } from './partition.js';
import { toRecord } from './record.js';
import type { StreamState } from './state.js';
import type { StreamStats } from './stats.js';

export { MANIFEST_FILE, PROGRESS_FILE } from './folder-store.js';

export interface StreamFolderOptions {
  folder: string;
  partition: Partition;
  epoch: number;
  resume: boolean;
  numberSamplePerShard: number;
  context: CandidateContext;
  stats?: StreamStats;
  onSample?: (delivered: number, size: number) => void;
}

export interface StreamFolderSummary {
  folder: string;
  delivered: number;
  size: number;
  shards: number;
  resumedFrom: number;
  repeats: number;
  byQuery: Record<string, number>;
  stats: StreamStats;
}

/**
 * One partition of a plan into a folder of webdataset shards (`00000.tar`, `00000.parquet`, `00000_stats.json`),
 * a manifest of delivered samples and `_stream.json`, locally or under an `s3://` prefix (folder-store.ts). A shard
 * is put in place whole (renamed locally; staged and uploaded on S3), then its manifest lines are written, then
 * `_stream.json` records the engine state: after a SIGKILL at any moment, `resume` continues from the last
 * completed shard — nothing lost, nothing twice, no truncated tar left.
 */
export async function streamToFolder(plan: Plan, o: StreamFolderOptions): Promise<StreamFolderSummary> {
  const store = streamFolderStore(o.folder);
  try {
    const progress = await openProgress(plan, o, store);
    await store.restore(progress);
    const { stream, resumedFrom, byQuery } = await writeShards(plan, o, store, progress);
    await store.finish(progress);
    return {
      folder: o.folder,
      delivered: progress.state?.delivered ?? 0,
      size: stream.size,
      shards: progress.shards,
      resumedFrom,
      repeats: stream.stats.repeats,
      byQuery,
      stats: stream.stats,
    };
  } finally {
    await store.close();
  }
}

/** Streams the partition from `progress` on, shard after shard, each committed before `progress` is written. */
async function writeShards(plan: Plan, o: StreamFolderOptions, store: StreamFolderStore, progress: FolderProgress) {
  const stream = streamPartition(plan, {
    partition: o.partition,
    epoch: o.epoch,
    state: progress.state ?? undefined,
    context: o.context,
    stats: o.stats,
  });
  const resumedFrom = progress.state?.delivered ?? 0;
  const byQuery: Record<string, number> = Object.fromEntries(
    plan.header.queries.map((q, i) => [q.name, progress.state?.queries[i]?.delivered ?? 0]),
  );
  const shard = {
    samples: stream[Symbol.asyncIterator](),
    columns: streamedSampleColumns(await firstCandidates(plan, 100)),
  };
  try {
    while (!progress.done) {
      const written = await writeShard(plan, o, store, progress, shard, (sample) => {
        byQuery[sample.query] = (byQuery[sample.query] ?? 0) + 1;
        o.onSample?.(sample.state.delivered, stream.size);
      });
      progress.manifest_bytes += Buffer.byteLength(written.manifest);
      progress.state = written.last;
      progress.done = (written.last?.delivered ?? 0) >= stream.size;
      await store.writeProgress(progress);
    }
  } finally {
    await stream.close();
  }
  return { stream, resumedFrom, byQuery };
}

/** The folder's progress: a new one, or the one there when it is this stream's and `resume` is asked. */
async function openProgress(plan: Plan, o: StreamFolderOptions, store: StreamFolderStore): Promise<FolderProgress> {
  await store.prepare();
  const previous = await store.readProgress();
  if (!previous) {
    const names = await store.someNames();
    if (names.length > 0)
      throw outputConflict(
        `${o.folder} already holds files (${names.join(', ')}…) and no ${PROGRESS_FILE}: it is not a stream's folder, and a new stream would replace its shards`,
        { hint: 'Give the stream an empty or new folder (--output-folder).' },
      );
    const progress: FolderProgress = {
      plan: plan.header.id,
      partition: o.partition,
      epoch: o.epoch,
      shards: 0,
      manifest_bytes: 0,
      state: null,
      done: false,
    };
    await store.writeProgress(progress);
    return progress;
  }
  const same =
    previous.plan === plan.header.id &&
    previous.partition.index === o.partition.index &&
    previous.partition.count === o.partition.count &&
    previous.epoch === o.epoch;
  if (!same) {
    throw outputConflict(
      `${o.folder} holds another stream (plan ${previous.plan}, partition ${previous.partition.index} of ${previous.partition.count}, epoch ${previous.epoch})`,
      {
        hint: 'Use one output folder per partition and epoch.',
      },
    );
  }
  if (!o.resume)
    throw outputConflict(`${o.folder} already holds ${previous.shards} shard(s) of this stream`, {
      hint: 'Add --resume to complete it, or choose an empty folder.',
    });
  return previous;
}

/**
 * The next shard: up to numberSamplePerShard samples, written, put in place with its manifest lines (counted in
 * `progress.shards`), or nothing when the stream had ended. Returns its manifest lines and the state after it.
 */
async function writeShard(
  plan: Plan,
  o: StreamFolderOptions,
  store: StreamFolderStore,
  progress: FolderProgress,
  shard: { samples: AsyncIterator<StreamSample>; columns: ParquetColumn[] },
  onSample: (sample: StreamSample) => void,
): Promise<{ manifest: string; last: StreamState | null }> {
  const shardName = String(progress.shards).padStart(5, '0');
  const writer = await openShardWriter({
    outputFolder: await store.shardFolder(),
    shardName,
    outputFormat: 'webdataset',
    encodeFormat: plan.header.image.encode_format,
    metaColumns: shard.columns,
    durable: !store.remote,
  });
  const stats = new StatsCollector();
  let manifest = '';
  let last = progress.state;
  let n = 0;
  try {
    for (; n < o.numberSamplePerShard; n++) {
      const next = await shard.samples.next();
      if (next.done) break;
      const record = toRecord(next.value, false);
      await writer.write(record);
      stats.add(record);
      manifest += manifestLine(next.value.json, new Date()) + '\n';
      last = next.value.state;
      onSample(next.value);
    }
    if (n === 0 && progress.shards > 0) {
      await writer.abort(); // the stream had ended with the last shard
      await store.discardShard();
      return { manifest, last };
    }
    await writer.close(stats.finish());
    await store.commitShard(shardName, manifest);
  } catch (err) {
    await writer.abort();
    await store.discardShard();
    throw err;
  }
  progress.shards++;
  return { manifest, last };
}

/** The first `n` candidates of each query (those known so far): what a shard's parquet columns are inferred from. */
async function firstCandidates(plan: Plan, n: number): Promise<Candidate[]> {
  const out: Candidate[] = [];
  for (const list of plan.candidates) {
    for (let i = 0; i < Math.min(n, list.length); i++) {
      const c = await list.at(i);
      if (c) out.push(c);
    }
  }
  return out;
}
