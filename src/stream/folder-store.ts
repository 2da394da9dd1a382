import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { outputConflict } from '../core/errors.js';
import { fsyncPath, removePartialShards, shardTarget } from '../sink/index.js';
import { openByteSource, sequentialChunks } from '../io/byte-source.js';
import { isS3Url, s3Delete, s3Join, s3List, s3Put, s3Size } from '../io/s3.js';
import { parseState, type StreamState } from './state.js';
import type { Partition } from './partition.js';

/** `_stream.json`: which stream a folder holds and how far it got; rewritten after every completed shard. */
export const PROGRESS_FILE = '_stream.json';
export const MANIFEST_FILE = 'manifest.jsonl';
/** On S3: one part of the manifest per completed shard (`_manifest/00000.jsonl`) until the stream is complete. */
export const MANIFEST_PARTS = '_manifest';

/** A progress object is a few hundred bytes per query; anything this big is not one. */
const MAX_PROGRESS_BYTES = 64 << 20;

export interface FolderProgress {
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

/**
 * Where a stream's folder lives: a local folder (shards written in place under temporary names and renamed, the
 * manifest appended) or an `s3://` prefix (each shard staged locally and published by the download's ShardTarget:
 * data objects whole, stats last; the manifest in one part per shard, joined into `manifest.jsonl` at the end).
 * In both, `_stream.json` is written after a shard's data and manifest lines: it is the commit point.
 */
export interface StreamFolderStore {
  readonly url: string;
  /** S3: shards are staged in the machine's temp folder (not fsynced: they are uploaded, then removed). */
  readonly remote: boolean;
  /** Creates the folder / checks that the bucket exists. */
  prepare(): Promise<void>;
  readProgress(): Promise<FolderProgress | undefined>;
  /** Names of what the folder holds (a few are enough): a new stream starts only in an empty folder. */
  someNames(): Promise<string[]>;
  writeProgress(progress: FolderProgress): Promise<void>;
  /** Removes what a crash left after `progress` (shards and manifest lines past it). Before any shard is written. */
  restore(progress: FolderProgress): Promise<void>;
  /** The folder the shard writer writes the next shard into. */
  shardFolder(): Promise<string>;
  /** Puts a shard closed in `shardFolder()` in place with its manifest lines. */
  commitShard(shardName: string, manifest: string): Promise<void>;
  /** Forgets a shard that was not written (its folder, when staged). */
  discardShard(): Promise<void>;
  /** Completes a finished stream's folder (S3: writes `manifest.jsonl` from its parts). */
  finish(progress: FolderProgress): Promise<void>;
  /** Removes local staging. */
  close(): Promise<void>;
}

export function streamFolderStore(folder: string): StreamFolderStore {
  return isS3Url(folder) ? s3Store(folder) : localStore(folder);
}

function parseProgress(text: string, where: string): FolderProgress {
  try {
    const p = JSON.parse(text) as FolderProgress;
    if (p.state) p.state = parseState(p.state, where);
    return p;
  } catch (err) {
    throw outputConflict(`${where} is unreadable (${(err as Error).message})`, {
      hint: 'Remove the folder or choose another one.',
    });
  }
}

const progressText = (progress: FolderProgress) => JSON.stringify(progress, null, 2) + '\n';

function localStore(folder: string): StreamFolderStore {
  const progressPath = join(folder, PROGRESS_FILE);
  const manifestPath = join(folder, MANIFEST_FILE);
  return {
    url: folder,
    remote: false,
    prepare: async () => void (await mkdir(folder, { recursive: true })),
    someNames: async () => (await readdir(folder).catch(() => [] as string[])).slice(0, 5),
    async readProgress() {
      const text = await readFile(progressPath, 'utf8').catch(() => undefined);
      return text === undefined ? undefined : parseProgress(text, progressPath);
    },
    async writeProgress(progress) {
      // the commit point: on disk before the rename makes it the folder's, so a power loss leaves the old one
      await writeFile(`${progressPath}.tmp`, progressText(progress), { flush: true });
      await rename(`${progressPath}.tmp`, progressPath);
      await fsyncPath(folder, { folder: true });
    },
    async restore(progress) {
      await removePartialShards(folder, new Set(Array.from({ length: progress.shards }, (_, i) => i)));
      await writeFile(manifestPath, '', { flag: 'a' });
      await truncate(manifestPath, progress.manifest_bytes);
    },
    shardFolder: async () => folder,
    commitShard: (_shardName, manifest) => appendManifest(manifestPath, manifest),
    discardShard: async () => {},
    finish: async () => {},
    close: async () => {},
  };
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

const PART = /^(\d+)\.jsonl$/;

/**
 * An `s3://` folder. S3 cannot append to an object, and rewriting the whole manifest after every shard would upload
 * O(shards²) bytes, so each shard's lines are an object of their own under `_manifest/`, published with the shard;
 * when the stream is complete they are joined into `manifest.jsonl` (staged locally, uploaded whole), then removed.
 * `manifest.jsonl` exists only once complete: a folder whose `_stream.json` says done but lacks it (killed while
 * joining) is completed by `--resume`.
 */
function s3Store(prefix: string): StreamFolderStore {
  const target = shardTarget(prefix);
  const parts = s3Join(prefix, MANIFEST_PARTS);
  const manifestUrl = s3Join(prefix, MANIFEST_FILE);
  let staging: string | undefined;
  let shard: string | undefined;
  const dropShard = async () => {
    if (shard !== undefined) await rm(shard, { recursive: true, force: true });
    shard = undefined;
  };
  return {
    url: prefix,
    remote: true,
    prepare: () => target.prepare(),
    someNames: async () => (await s3List(prefix)).slice(0, 5),
    async readProgress() {
      const bytes = await target.readFile(PROGRESS_FILE, MAX_PROGRESS_BYTES);
      return bytes === undefined ? undefined : parseProgress(bytes.toString('utf8'), s3Join(prefix, PROGRESS_FILE));
    },
    writeProgress: (progress) => target.writeFile(PROGRESS_FILE, Buffer.from(progressText(progress))),
    async restore(progress) {
      await target.removePartial(new Set(Array.from({ length: progress.shards }, (_, i) => i)));
      const stale = (await s3List(parts)).filter((n) => Number(PART.exec(n)?.[1] ?? -1) >= progress.shards);
      await s3Delete(parts, stale);
      if (!progress.done) await s3Delete(prefix, [MANIFEST_FILE]);
    },
    async shardFolder() {
      staging ??= await mkdtemp(join(tmpdir(), 'clipstream-stream-'));
      shard = await mkdtemp(join(staging, 's-'));
      return shard;
    },
    async commitShard(shardName, manifest) {
      await target.unpublish(shardName);
      await target.publish(shard!, shardName);
      await s3Put(s3Join(parts, `${shardName}.jsonl`), { bytes: manifest });
      await dropShard();
    },
    discardShard: dropShard,
    async finish(progress) {
      if (!progress.done) return;
      const names = await s3List(parts);
      if ((await s3Size(manifestUrl)) !== progress.manifest_bytes) {
        staging ??= await mkdtemp(join(tmpdir(), 'clipstream-stream-'));
        await joinManifest(prefix, progress.shards, join(staging, MANIFEST_FILE));
      }
      await s3Delete(parts, names);
    },
    async close() {
      if (staging !== undefined) await rm(staging, { recursive: true, force: true });
    },
  };
}

/** Joins the manifest parts of shards 0 … shards-1 into `manifest.jsonl` (a local file uploaded whole). */
async function joinManifest(prefix: string, shards: number, local: string): Promise<void> {
  const handle = await open(local, 'w');
  try {
    for (let i = 0; i < shards; i++) {
      const url = s3Join(prefix, `${MANIFEST_PARTS}/${String(i).padStart(5, '0')}.jsonl`);
      const { source } = await openByteSource(url);
      try {
        for await (const chunk of sequentialChunks(source)) await handle.write(chunk);
      } finally {
        await source.close();
      }
    }
  } finally {
    await handle.close();
  }
  await s3Put(s3Join(prefix, MANIFEST_FILE), { file: local });
}
