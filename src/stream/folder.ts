import { mkdir, open, readFile, rename, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { outputConflict } from '../core/errors.js';
import type { ParquetColumn } from '../io/parquet-write.js';
import { manifestLine, streamedSampleColumns } from '../sample/fields.js';
import type { Candidate, Plan } from '../select/plan.js';
import { openShardWriter, removePartialShards, StatsCollector } from '../sink/index.js';
import type { CandidateContext } from './candidate.js';
import { streamPartition, type StreamSample } from './engine.js';
import type { Partition } from './partition.js';
import { toRecord } from './record.js';
import { parseState, type StreamState } from './state.js';
import type { StreamStats } from './stats.js';

/** `_stream.json`: which stream a folder holds and how far it got; rewritten after every completed shard. */
export const PROGRESS_FILE = '_stream.json';
export const MANIFEST_FILE = 'manifest.jsonl';

interface FolderProgress {
  plan: string;
  partition: Partition;
  epoch: number;
  /** Completed shards, 0 … shards-1. */
  shards: number;
  /** Bytes of manifest.jsonl that belong to completed shards. */
  manifest_bytes: number;
  /** Engine state after the last completed shard; null before the first. */
  state: StreamState | null;
  done: boolean;
}

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
 * a manifest of delivered samples and `_stream.json`. Shards are written under temporary names and renamed
 * (src/sink), then the manifest is appended, then `_stream.json` records the engine state: after a SIGKILL at any
 * moment, `resume` continues from the last completed shard — nothing lost, nothing twice, no truncated tar left.
 */
export async function streamToFolder(plan: Plan, o: StreamFolderOptions): Promise<StreamFolderSummary> {
  const progressPath = join(o.folder, PROGRESS_FILE);
  const manifestPath = join(o.folder, MANIFEST_FILE);
  const progress = await openProgress(plan, o, progressPath);
  await removePartialShards(o.folder, new Set(Array.from({ length: progress.shards }, (_, i) => i)));
  await writeFile(manifestPath, '', { flag: 'a' });
  await truncate(manifestPath, progress.manifest_bytes);

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
      const written = await writeShard(plan, o, progress, shard, (sample) => {
        byQuery[sample.query] = (byQuery[sample.query] ?? 0) + 1;
        o.onSample?.(sample.state.delivered, stream.size);
      });
      await appendManifest(manifestPath, written.manifest);
      progress.manifest_bytes += Buffer.byteLength(written.manifest);
      progress.state = written.last;
      progress.done = (written.last?.delivered ?? 0) >= stream.size;
      await writeProgress(progressPath, progress);
    }
  } finally {
    await stream.close();
  }
  const delivered = progress.state?.delivered ?? 0;
  return {
    folder: o.folder,
    delivered,
    size: stream.size,
    shards: progress.shards,
    resumedFrom,
    repeats: stream.stats.repeats,
    byQuery,
    stats: stream.stats,
  };
}

/** The folder's progress: a new one, or the one there when it is this stream's and `resume` is asked. */
async function openProgress(plan: Plan, o: StreamFolderOptions, path: string): Promise<FolderProgress> {
  await mkdir(o.folder, { recursive: true });
  const previous = await readProgress(path);
  if (!previous) {
    const progress: FolderProgress = {
      plan: plan.header.id,
      partition: o.partition,
      epoch: o.epoch,
      shards: 0,
      manifest_bytes: 0,
      state: null,
      done: false,
    };
    await writeProgress(path, progress);
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
 * The next shard: up to numberSamplePerShard samples, written and renamed into place (counted in
 * `progress.shards`), or nothing when the stream had ended. Returns its manifest lines and the state after it.
 */
async function writeShard(
  plan: Plan,
  o: StreamFolderOptions,
  progress: FolderProgress,
  shard: { samples: AsyncIterator<StreamSample>; columns: ParquetColumn[] },
  onSample: (sample: StreamSample) => void,
): Promise<{ manifest: string; last: StreamState | null }> {
  const shardName = String(progress.shards).padStart(5, '0');
  const writer = await openShardWriter({
    outputFolder: o.folder,
    shardName,
    outputFormat: 'webdataset',
    encodeFormat: plan.header.image.encode_format,
    metaColumns: shard.columns,
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
    } else {
      await writer.close(stats.finish());
      progress.shards++;
    }
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return { manifest, last };
}

async function appendManifest(path: string, lines: string): Promise<void> {
  if (!lines) return;
  const handle = await open(path, 'a');
  try {
    await handle.write(lines);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function readProgress(path: string): Promise<FolderProgress | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const p = JSON.parse(text) as FolderProgress;
    if (p.state) p.state = parseState(p.state, path);
    return p;
  } catch (err) {
    throw outputConflict(`${path} is unreadable (${(err as Error).message})`, {
      hint: 'Remove the folder or choose another one.',
    });
  }
}

async function writeProgress(path: string, progress: FolderProgress): Promise<void> {
  await writeFile(`${path}.tmp`, JSON.stringify(progress, null, 2) + '\n');
  await rename(`${path}.tmp`, path);
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
