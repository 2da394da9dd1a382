/**
 * What `clipstream index info DIR|URL` reports of an index of either kind, read from headers, footers and
 * clipstream.json only (no list, vector or metadata row is read): a faiss folder's type, dimension, vectors, lists,
 * PQ, metric, search parameters, bytes, metadata files and rows and whether they agree with the vectors; a
 * clipstream index's clipstream.json and its size on disk.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { faissFolderInfo, type FaissFolderInfo } from './faiss/info.js';
import { requireIndexInfo, type IndexInfo } from './info.js';
import { indexKindAt } from './open-backend.js';

export type IndexDescription =
  | ({ kind: 'faiss'; location: string } & FaissFolderInfo)
  | { kind: 'clipstream'; location: string; info: IndexInfo; bytesOnDisk: number };

export async function describeIndexAt(location: string): Promise<IndexDescription> {
  if ((await indexKindAt(location)) === 'faiss')
    return { kind: 'faiss', location, ...(await faissFolderInfo(location)) };
  return {
    kind: 'clipstream',
    location,
    info: await requireIndexInfo(location),
    bytesOnDisk: await folderBytes(location),
  };
}

async function folderBytes(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const sizes = await Promise.all(
    entries
      .filter((e) => e.isFile())
      .map((e) =>
        stat(join(e.parentPath, e.name)).then(
          (s) => s.size,
          () => 0,
        ),
      ),
  );
  return sizes.reduce((a, b) => a + b, 0);
}
