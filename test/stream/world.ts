import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { loadClipModel, writeColorClip } from '../../src/clip/index.js';
import { buildIndex } from '../../src/index/index.js';
import { writeNpy } from '../../src/io/npy.js';
import { openParquetWriter } from '../../src/io/parquet-write.js';
import { solidImage } from '../clip/helpers.js';
import { startImageServer, type ImageServer } from '../helpers/image-server.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';

/**
 * A world for stream tests: the fault-injecting image server, color-CLIP, and an index whose rows are solid
 * red / blue / green images on that server (embedded by color-CLIP itself), a given fraction of them dead links.
 */
export const COLOURS = { red: 'dc1e1e', blue: '1e3cd2', green: '1eaa3c' } as const;
export type Colour = keyof typeof COLOURS;

export interface StreamWorld {
  dir: string;
  server: ImageServer;
  indexDir: string;
  modelDir: string;
  /** Row id → colour and whether its link is dead. */
  rows: { colour: Colour; dead: boolean; url: string }[];
  /** Writes a spec file with these queries (text queries by colour word) and the given extra top-level fields. */
  spec(
    queries: { name: string; text?: string; count: number; min_similarity?: number; [k: string]: unknown }[],
    extra?: Record<string, unknown>,
  ): Promise<string>;
}

export const MIN_SIMILARITY = 0.9;

/** Row `id` is a dead link when (7·id mod 10) < 10·deadFraction: spread evenly over the colours. */
export function streamWorld(o: {
  counts: Partial<Record<Colour, number>>;
  deadFraction?: number;
  latencyMs?: [number, number];
}): () => StreamWorld {
  let world: StreamWorld | undefined;
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clipstream-stream-'));
    const server = await startImageServer({ latencyMs: o.latencyMs });
    const modelDir = join(dir, 'model');
    await writeColorClip(modelDir);
    const model = await loadClipModel(modelDir);
    const vectors = new Map<Colour, Float32Array>();
    for (const c of Object.keys(COLOURS) as Colour[]) {
      const hex = COLOURS[c];
      const rgb = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
      vectors.set(c, (await model.encodeImages([await solidImage(rgb)]))[0]!);
    }
    await model.close();
    const rows: StreamWorld['rows'] = [];
    // Interleave colours so that ids of one colour are spread out, as in a real index.
    const remaining = { ...o.counts };
    while (Object.values(remaining).some((n) => (n ?? 0) > 0)) {
      for (const c of Object.keys(remaining) as Colour[]) {
        if ((remaining[c] ?? 0) <= 0) continue;
        remaining[c]!--;
        const id = rows.length;
        const dead = (id * 7) % 10 < 10 * (o.deadFraction ?? 0);
        const url = dead
          ? `${server.url}/status/404?id=${id}`
          : `${server.url}/img/48x40.jpg?color=${COLOURS[c]}&id=${id}`;
        rows.push({ colour: c, dead, url });
      }
    }
    const emb = join(dir, 'emb');
    await mkdir(join(emb, 'img_emb'), { recursive: true });
    await mkdir(join(emb, 'metadata'), { recursive: true });
    await writeNpy(
      join(emb, 'img_emb', 'img_emb_0.npy'),
      rows.map((r) => vectors.get(r.colour)!),
      vectors.get('red')!.length,
      'float16',
    );
    const meta = await openParquetWriter(join(emb, 'metadata', 'metadata_0.parquet'), [
      { name: 'url', type: 'STRING' },
      { name: 'caption', type: 'STRING' },
      { name: 'colour', type: 'STRING' },
    ]);
    for (const [id, r] of rows.entries())
      await meta.writeRow({ url: r.url, caption: `a ${r.colour} square ${id}`, colour: r.colour });
    await meta.close();
    const indexDir = join(dir, 'index');
    await buildIndex({ embeddings: emb, output: indexDir });
    let specs = 0;
    world = {
      dir,
      server,
      indexDir,
      modelDir,
      rows,
      async spec(queries, extra = {}) {
        const path = join(dir, `spec-${specs++}.json`);
        const spec = {
          index: indexDir,
          model: modelDir,
          queries: queries.map((q) => ({ text: q.name, min_similarity: MIN_SIMILARITY, ...q })),
          fetch: { allow_private_networks: true, timeout: 5, retries: 0, concurrency: 32 },
          image: { size: 32, resize_mode: 'center_crop' },
          ...extra,
        };
        await writeFile(path, JSON.stringify(spec, null, 2));
        return path;
      },
    };
  }, 60_000);
  afterAll(async () => {
    if (!world) return;
    await world.server.close();
    await rm(world.dir, { recursive: true, force: true });
  });
  return () => {
    if (!world) throw new Error('stream world not ready');
    return world;
  };
}
