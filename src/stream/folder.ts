import { mkdir, open, readFile, rename, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipstreamError } from '../core/errors.js';
import { manifestLine, streamedSampleColumns } from '../sample/fields.js';
import type { Plan } from '../select/plan.js';
import { openShardWriter, removePartialShards, StatsCollector } from '../sink/index.js';
import type { CandidateContext } from './candidate.js';
import { streamPartition } from './engine.js';
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
  await mkdir(o.folder, { recursive: true });
  const previous = await readProgress(progressPath);
  let progress: FolderProgress;
  if (previous) {
    const same = previous.plan === plan.header.id && previous.partition.index === o.partition.index &&
      previous.partition.count === o.partition.count && previous.epoch === o.epoch;
    if (!same) {
      throw new ClipstreamError('OUTPUT_CONFLICT', `${o.folder} holds another stream (plan ${previous.plan}, partition ${previous.partition.index} of ${previous.partition.count}, epoch ${previous.epoch})`, {
        hint: 'Use one output folder per partition and epoch.',
      });
    }
    if (!o.resume) {
      throw new ClipstreamError('OUTPUT_CONFLICT', `${o.folder} already holds ${previous.shards} shard(s) of this stream`, {
        hint: 'Add --resume to complete it, or choose an empty folder.',
      });
    }
    progress = previous;
  } else {
    progress = { plan: plan.header.id, partition: o.partition, epoch: o.epoch, shards: 0, manifest_bytes: 0, state: null, done: false };
    await writeProgress(progressPath, progress);
  }
  await removePartialShards(o.folder, new Set(Array.from({ length: progress.shards }, (_, i) => i)));
  await writeFile(manifestPath, '', { flag: 'a' });
  await truncate(manifestPath, progress.manifest_bytes);

  const stream = streamPartition(plan, { partition: o.partition, epoch: o.epoch, state: progress.state ?? undefined, context: o.context, stats: o.stats });
  const resumedFrom = progress.state?.delivered ?? 0;
  const byQuery: Record<string, number> = Object.fromEntries(plan.header.queries.map((q, i) => [q.name, progress.state?.queries[i]?.delivered ?? 0]));
  const columns = streamedSampleColumns(plan.candidates.flatMap((list) => list.slice(0, 100)));
  const iterator = stream[Symbol.asyncIterator]();
  try {
    while (!progress.done) {
      const shardName = String(progress.shards).padStart(5, '0');
      const writer = await openShardWriter({ outputFolder: o.folder, shardName, outputFormat: 'webdataset', encodeFormat: plan.header.image.encode_format, metaColumns: columns });
      const stats = new StatsCollector();
      const manifest: string[] = [];
      let last: StreamState | null = progress.state;
      let n = 0;
      try {
        while (n < o.numberSamplePerShard) {
          const next = await iterator.next();
          if (next.done) break;
          const sample = next.value;
          const record = toRecord(sample, false);
          await writer.write(record);
          stats.add(record);
          manifest.push(manifestLine(sample.json, new Date()));
          byQuery[sample.query] = (byQuery[sample.query] ?? 0) + 1;
          last = sample.state;
          n++;
          o.onSample?.(sample.state.delivered, stream.size);
        }
        if (n === 0 && progress.shards > 0) {
          await writer.abort();
        } else {
          await writer.close(stats.finish());
          progress.shards++;
        }
      } catch (err) {
        await writer.abort();
        throw err;
      }
      if (manifest.length) {
        const handle = await open(manifestPath, 'a');
        try {
          await handle.write(manifest.join('\n') + '\n');
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      progress.manifest_bytes += Buffer.byteLength(manifest.length ? manifest.join('\n') + '\n' : '');
      progress.state = last;
      progress.done = (last?.delivered ?? 0) >= stream.size;
      await writeProgress(progressPath, progress);
    }
  } finally {
    await stream.close();
  }
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
    throw new ClipstreamError('OUTPUT_CONFLICT', `${path} is unreadable (${(err as Error).message})`, { hint: 'Remove the folder or choose another one.' });
  }
}

async function writeProgress(path: string, progress: FolderProgress): Promise<void> {
  await writeFile(`${path}.tmp`, JSON.stringify(progress, null, 2) + '\n');
  await rename(`${path}.tmp`, path);
}
