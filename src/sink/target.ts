import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { outputConflict } from '../core/errors.js';
import { collect, parallelMapUnordered } from '../core/async.js';
import { checkBucket, isS3Url, s3Delete, s3Join, s3List, s3Put, s3ReadSmall } from '../io/s3.js';
import { fsyncPath, listDoneShards, removePartialShards, renameReplacing, shardPaths } from './layout.js';

/**
 * Where a job's shards end up: a local folder, or an `s3://bucket/prefix`. A shard is written whole in a staging
 * folder by the sink, then `publish` puts its data in place and its `_stats.json` last, the completion marker —
 * on S3 as objects (each whole or absent: lib-storage aborts a failed multipart upload), locally by rename.
 * A shard published again (a worker that died after its upload, a rerun) replaces its objects; none is duplicated.
 */
export interface ShardTarget {
  /** The folder or URL, for messages. */
  readonly url: string;
  readonly remote: boolean;
  /** Creates the folder / checks that the bucket exists. */
  prepare(): Promise<void>;
  /** Ids of the shards whose stats file exists: done. */
  listDone(): Promise<Set<number>>;
  /** Removes leftovers of shards that are not done (only while no writer runs). */
  removePartial(done: Set<number>): Promise<void>;
  /** Removes everything (--incremental-mode overwrite). */
  clear(): Promise<void>;
  /** A shard is about to be (re)written: it is not done until it is published again. */
  unpublish(shardName: string): Promise<void>;
  /** Moves a shard completed in `staging` into place: its data first, its stats last. */
  publish(staging: string, shardName: string): Promise<void>;
  /** Small whole files next to the output (the queue's shard inputs in `_tmp/`). */
  writeFile(name: string, bytes: Uint8Array): Promise<void>;
  readFile(name: string, maxBytes: number): Promise<Buffer | undefined>;
  removeFiles(names: string[]): Promise<void>;
}

export function shardTarget(output: string): ShardTarget {
  return isS3Url(output) ? s3Target(output) : localTarget(output);
}

/** A shard's outputs in publishing order (the stats file is not one of them: it goes last). */
async function stagedParts(staging: string, shardName: string): Promise<{ name: string; folder: boolean }[]> {
  const present = new Set(await readdir(staging));
  const parts = [`${shardName}.parquet`, `${shardName}.tar`, shardName];
  return parts.filter((n) => present.has(n)).map((name) => ({ name, folder: name === shardName }));
}

function localTarget(folder: string): ShardTarget {
  return {
    url: folder,
    remote: false,
    async prepare() {
      try {
        await mkdir(folder, { recursive: true });
      } catch (err) {
        throw outputConflict(`cannot create the output folder ${folder}: ${(err as Error).message}`, {
          hint: 'Choose another --output-folder or fix its permissions.',
        });
      }
    },
    listDone: () => listDoneShards(folder),
    removePartial: async (done) => void (await removePartialShards(folder, done)),
    clear: () => rm(folder, { recursive: true, force: true }),
    unpublish: (shardName) => rm(shardPaths(folder, shardName).stats, { force: true }),
    async publish(staging, shardName) {
      for (const part of await stagedParts(staging, shardName)) {
        await renameReplacing(join(staging, part.name), join(folder, part.name), { folder: part.folder });
      }
      await rename(join(staging, `${shardName}_stats.json`), shardPaths(folder, shardName).stats);
      await fsyncPath(folder, { folder: true });
    },
    async writeFile(name, bytes) {
      const path = join(folder, name);
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(`${path}.partial`, bytes, { flush: true });
      await rename(`${path}.partial`, path);
    },
    async readFile(name, maxBytes) {
      const path = join(folder, name);
      const size = await stat(path).then(
        (s) => s.size,
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return undefined;
          throw err;
        },
      );
      if (size === undefined) return undefined;
      // as s3ReadSmall: a damaged or foreign file is refused, not read whole
      if (size > maxBytes) throw outputConflict(`${path} is ${size} bytes, more than the ${maxBytes} expected`);
      return readFile(path);
    },
    removeFiles: async (names) => void (await Promise.all(names.map((n) => rm(join(folder, n), { force: true })))),
  };
}

const STATS = /^(\d+)_stats\.json$/;
const DATA = /^(\d+)(?:\.tar|\.parquet|\/)$/;

function s3Target(prefix: string): ShardTarget {
  const at = (name: string) => s3Join(prefix, name);
  return {
    url: prefix,
    remote: true,
    prepare: () => checkBucket(prefix),
    async listDone() {
      const done = new Set<number>();
      for (const name of await s3List(prefix)) {
        const m = STATS.exec(name);
        if (m) done.add(Number(m[1]));
      }
      return done;
    },
    async removePartial(done) {
      const names = await s3List(prefix);
      const stale = names.filter((n) => DATA.test(n) && !done.has(Number(DATA.exec(n)![1])));
      await s3Delete(
        prefix,
        stale.filter((n) => !n.endsWith('/')),
      );
      for (const folder of stale.filter((n) => n.endsWith('/'))) await removeS3Folder(at(folder));
    },
    clear: () => removeS3Folder(prefix),
    unpublish: (shardName) => s3Delete(prefix, [`${shardName}_stats.json`]),
    async publish(staging, shardName) {
      for (const part of await stagedParts(staging, shardName)) {
        if (part.folder) await publishS3Folder(join(staging, part.name), at(part.name));
        else await s3Put(at(part.name), { file: join(staging, part.name) });
      }
      await s3Put(at(`${shardName}_stats.json`), { file: join(staging, `${shardName}_stats.json`) });
    },
    writeFile: (name, bytes) => s3Put(at(name), { bytes }),
    readFile: (name, maxBytes) => s3ReadSmall(at(name), maxBytes),
    removeFiles: (names) => s3Delete(prefix, names),
  };
}

async function removeS3Folder(folderUrl: string): Promise<void> {
  await s3Delete(folderUrl, await s3List(folderUrl, { recursive: true }));
}

/**
 * The files of a shard folder (output format `files`) as objects under `{shard}/`: the old objects go first, so a
 * rerun whose sample failed where it succeeded before leaves no stale file of it.
 */
async function publishS3Folder(local: string, folderUrl: string): Promise<void> {
  await removeS3Folder(folderUrl);
  const names = await readdir(local);
  await collect(
    parallelMapUnordered(names, (n) => s3Put(s3Join(folderUrl, n), { file: join(local, n) }), { concurrency: 16 }),
  );
}
