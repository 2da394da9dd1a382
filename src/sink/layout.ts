import { open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Suffix of everything a shard writes before `close()` renames it into place. */
export const PARTIAL = '.partial';

/** The names of a shard's outputs (img2dataset §2) and of their temporaries. */
export function shardPaths(outputFolder: string, shardName: string) {
  const at = (name: string) => join(outputFolder, name);
  return {
    tar: at(`${shardName}.tar`),
    parquet: at(`${shardName}.parquet`),
    folder: at(shardName),
    stats: at(`${shardName}_stats.json`),
    tarPartial: at(`${shardName}.tar${PARTIAL}`),
    parquetPartial: at(`${shardName}.parquet${PARTIAL}`),
    folderPartial: at(`${shardName}${PARTIAL}`),
    statsPartial: at(`${shardName}_stats.json${PARTIAL}`),
  };
}

const STATS = /^(\d+)_stats\.json$/;
/** Temporaries: `00000.tar.partial`, `00000.parquet.partial`, `00000.partial/`, `00000_stats.json.partial`. */
const TEMPORARY = /^(\d+)(?:\.tar|\.parquet|_stats\.json)?\.partial$/;
/** Data outputs: `00000.tar`, `00000.parquet`, `00000/`. */
const DATA = /^(\d+)(?:\.tar|\.parquet)?$/;

async function listFolder(folder: string): Promise<string[]> {
  try {
    return await readdir(folder);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Ids of the shards that have a `{id}_stats.json`: the completion marker, written last. */
export async function listDoneShards(outputFolder: string): Promise<Set<number>> {
  const done = new Set<number>();
  for (const name of await listFolder(outputFolder)) {
    const match = STATS.exec(name);
    if (match) done.add(Number(match[1]));
  }
  return done;
}

/**
 * Cleans what crashed shard writers left: every temporary (`*.partial`), and the data files (`{id}.tar`,
 * `{id}.parquet`, `{id}/`) of shards whose id is not in `exceptDone`. Other files are left alone. Returns the
 * removed paths, sorted. Call it before writers start: it cannot tell a crashed writer from a running one.
 */
export async function removePartialShards(outputFolder: string, exceptDone: Set<number>): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await listFolder(outputFolder)) {
    const temporary = TEMPORARY.exec(name);
    const data = DATA.exec(name);
    if (temporary || (data && !exceptDone.has(Number(data[1])))) {
      const path = join(outputFolder, name);
      await rm(path, { recursive: true, force: true });
      removed.push(path);
    }
  }
  return removed.sort();
}

/** fsync a file or a folder (a folder's fsync makes the renames inside it durable). Best effort on folders. */
export async function fsyncPath(path: string, { folder = false } = {}): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'r');
    await handle.sync();
  } catch (err) {
    // Some platforms and file systems refuse fsync on a directory; the data files themselves were synced.
    if (!folder) throw err;
  } finally {
    await handle?.close();
  }
}

/** rename, replacing a folder at the destination (rename(2) replaces files but not non-empty folders). */
export async function renameReplacing(from: string, to: string, { folder = false } = {}): Promise<void> {
  if (folder) await rm(to, { recursive: true, force: true });
  await rename(from, to);
}
