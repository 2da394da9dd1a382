import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadClipModel, writeColorClip } from '../../src/clip/index.js';
import { buildIndex } from '../../src/index/index.js';
import { writeNpy } from '../../src/io/npy.js';
import { openParquetWriter } from '../../src/io/parquet-write.js';
import { solidImage } from '../clip/helpers.js';
import { startImageServer, type ImageServer } from '../helpers/image-server.js';

/**
 * The page's world: the fault-injecting image server and an index of `count` solid colours that sweep from red
 * through orange and yellow to green, so a "red" query's similarities fall smoothly (the edge of a threshold has
 * rows on both sides) instead of in one step per colour. Every 7th row is a dead link (404), every 11th serves a
 * web page. Metadata: url, caption, shade (the row's position in the sweep, 0–99), width.
 */
export interface WebWorld {
  dir: string;
  server: ImageServer;
  indexDir: string;
  modelDir: string;
  rows: { url: string; fate: 'ok' | 'dead' | 'not_an_image'; shade: number; width: number }[];
  /** Row id → its embedding as written to the embedding folder (the index keeps it as float16). */
  vectors: Float32Array[];
  close(): Promise<void>;
}

export function rowFate(id: number): 'ok' | 'dead' | 'not_an_image' {
  return id % 7 === 3 ? 'dead' : id % 11 === 5 ? 'not_an_image' : 'ok';
}

export async function buildWebWorld(count = 240): Promise<WebWorld> {
  const dir = await mkdtemp(join(tmpdir(), 'clipstream-web-'));
  const server = await startImageServer();
  const modelDir = join(dir, 'model');
  await writeColorClip(modelDir);
  const model = await loadClipModel(modelDir);
  const rows: WebWorld['rows'] = [];
  const vectors: Float32Array[] = [];
  try {
    for (let id = 0; id < count; id++) {
      const shade = Math.round((((id * 37) % count) / count) * 100); // ids of one shade spread over the index
      const rgb = [220, Math.round(30 + 1.7 * shade), 30] as const; // red → orange → yellow
      const hex = rgb.map((c) => c.toString(16).padStart(2, '0')).join('');
      const fate = rowFate(id);
      const width = 48 + (id % 4) * 16;
      const url =
        fate === 'dead'
          ? `${server.url}/status/404?id=${id}`
          : fate === 'not_an_image'
            ? `${server.url}/html?id=${id}`
            : `${server.url}/img/${width}x40.jpg?color=${hex}&id=${id}`;
      rows.push({ url, fate, shade, width });
      vectors.push((await model.encodeImages([await solidImage(rgb, 'png', 16, 16)]))[0]!);
    }
  } finally {
    await model.close();
  }
  const emb = join(dir, 'emb');
  await mkdir(join(emb, 'img_emb'), { recursive: true });
  await mkdir(join(emb, 'metadata'), { recursive: true });
  await writeNpy(join(emb, 'img_emb', 'img_emb_0.npy'), vectors, vectors[0]!.length, 'float16');
  const meta = await openParquetWriter(join(emb, 'metadata', 'metadata_0.parquet'), [
    { name: 'url', type: 'STRING' },
    { name: 'caption', type: 'STRING' },
    { name: 'shade', type: 'INT64' },
    { name: 'width', type: 'INT64' },
  ]);
  for (const [id, r] of rows.entries())
    await meta.writeRow({
      url: r.url,
      caption: `a square of shade ${r.shade}, row ${id}`,
      shade: r.shade,
      width: r.width,
    });
  await meta.close();
  const indexDir = join(dir, 'index');
  await buildIndex({ embeddings: emb, output: indexDir, model: 'color-clip' });
  return {
    dir,
    server,
    indexDir,
    modelDir,
    rows,
    vectors,
    close: async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
