import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openNpy, writeNpy } from '../../../src/io/npy.js';
import { openParquetWriter } from '../../../src/io/parquet-write.js';
import type { ImageServer } from '../../helpers/image-server.js';

/**
 * A LAION-shaped folder built from the faiss fixtures (scripts/faiss-fixtures.sh): the on-disk index that
 * clip-retrieval's index_combiner writes (`image.index/populated.index` + `merged_index.ivfdata`, with autofaiss's
 * `image.json`), and parquet metadata whose urls point at the test image server, so that its rows can be streamed.
 * Row i's url is dead (404) when i % 10 === 3; live rows are 40 × 32 jpgs of a colour derived from i.
 */
export interface LaionWorld {
  folder: string;
  /** Row id → its metadata url. */
  urls: string[];
  /** The fixture queries (64 floats each) and the first one as a .npy file. */
  queries: Float32Array;
  queryNpy: string;
}

export const isDead = (id: number) => id % 10 === 3;

/**
 * `source`: the fixture folder whose index is used — `ondisk` (clip-retrieval's index_combiner output) or `autofaiss`
 * (one image.index file, as `clip-retrieval index` writes it with autofaiss); the world is `dir/name`.
 */
export async function laionWorld(
  fixtures: string,
  server: ImageServer,
  dir: string,
  source: 'ondisk' | 'autofaiss' = 'ondisk',
  name = 'laion',
): Promise<LaionWorld> {
  const folder = join(dir, name);
  await mkdir(join(folder, 'metadata'), { recursive: true });
  await cp(join(fixtures, `folders/${source}/image.index`), join(folder, 'image.index'), { recursive: true });
  await cp(join(fixtures, `folders/${source}/image.json`), join(folder, 'image.json'));
  const rows = 12_000;
  const urls = Array.from({ length: rows }, (_, i) =>
    isDead(i)
      ? `${server.url}/status/404?id=${i}`
      : `${server.url}/img/40x32.jpg?color=${(((i * 2654435761) >>> 8) & 0xffffff).toString(16).padStart(6, '0')}&id=${i}`,
  );
  // Two partitions, as clip-retrieval writes them: rows in file-name order are the index ids.
  for (const [p, [from, to]] of [
    [0, 7000],
    [7000, rows],
  ].entries()) {
    const meta = await openParquetWriter(
      join(folder, 'metadata', `metadata_${p}.parquet`),
      [
        { name: 'url', type: 'STRING' },
        { name: 'caption', type: 'STRING' },
        { name: 'width', type: 'INT64' },
      ],
      { rowGroupSize: 2000 },
    );
    for (let i = from!; i < to!; i++) await meta.writeRow({ url: urls[i], caption: `row ${i}`, width: 40 });
    await meta.close();
  }
  const npy = await openNpy(join(fixtures, 'queries.npy'));
  const queries = await npy.readRows(0, npy.header.rowCount);
  await npy.close();
  const queryNpy = join(dir, `${name}-q0.npy`);
  await writeNpy(queryNpy, [queries.slice(0, 64)], 64, 'float32');
  return { folder, urls, queries, queryNpy };
}

/** A spec file over `index` (a folder or URL) whose queries are fixture embeddings. */
export async function laionSpec(
  dir: string,
  index: string,
  queries: Record<string, unknown>[],
  extra: Record<string, unknown> = {},
): Promise<string> {
  const path = join(dir, `spec-${Math.random().toString(36).slice(2)}.json`);
  const spec = {
    index,
    queries,
    fetch: { allow_private_networks: true, timeout: 5, retries: 0, concurrency: 16 },
    image: { size: 24, resize_mode: 'center_crop' },
    ...extra,
  };
  await writeFile(path, JSON.stringify(spec));
  return path;
}
