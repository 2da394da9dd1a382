import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadClipModel, writeColorClip } from '../clip/index.js';
import { buildIndex } from '../index/index.js';
import { writeNpy } from '../io/npy.js';
import { openParquetWriter } from '../io/parquet-write.js';
import { demoImage, renderDemoImage } from './world.js';

export interface DemoWorldFiles {
  modelDir: string;
  indexDir: string;
  specPath: string;
}

/**
 * Similarity at which color-CLIP's "red", "blue", "green" take only images of that colour in the demo world
 * (measured: the colour itself 0.94–0.99; the nearest other colour 0.82 for red/orange, 0.76 blue/purple).
 */
export const DEMO_MIN_SIMILARITY = 0.9;

/**
 * The demo world's index: the color-CLIP model written from code, every image embedded by it (from a small
 * render: color-CLIP looks at the mean colour), a clip-retrieval embedding folder and its index, and a spec.
 * Image urls point at `serverUrl`, so the world is rebuilt whenever the image server gets a new port.
 */
export async function buildDemoWorld(
  dir: string,
  o: { serverUrl: string; count: number; queries?: { name: string; text: string; count: number }[] },
): Promise<DemoWorldFiles> {
  const modelDir = join(dir, 'model');
  const embeddings = join(dir, 'embeddings');
  const indexDir = join(dir, 'index');
  await rm(embeddings, { recursive: true, force: true });
  await rm(indexDir, { recursive: true, force: true });
  await mkdir(join(embeddings, 'img_emb'), { recursive: true });
  await mkdir(join(embeddings, 'metadata'), { recursive: true });
  await writeColorClip(modelDir);

  const model = await loadClipModel(modelDir);
  const vectors: Float32Array[] = [];
  try {
    for (let start = 0; start < o.count; start += 256) {
      const ids = Array.from({ length: Math.min(256, o.count - start) }, (_, i) => start + i);
      const thumbs = await Promise.all(ids.map((id) => renderDemoImage({ ...demoImage(id), width: 40, height: 32 })));
      vectors.push(...(await model.encodeImages(thumbs)));
    }
  } finally {
    await model.close();
  }
  await writeNpy(join(embeddings, 'img_emb', 'img_emb_0.npy'), vectors, vectors[0]!.length, 'float16');
  const meta = await openParquetWriter(join(embeddings, 'metadata', 'metadata_0.parquet'), [
    { name: 'url', type: 'STRING' },
    { name: 'caption', type: 'STRING' },
    { name: 'colour', type: 'STRING' },
    { name: 'width', type: 'INT64' },
    { name: 'height', type: 'INT64' },
  ]);
  for (let id = 0; id < o.count; id++) {
    const img = demoImage(id);
    await meta.writeRow({
      url: `${o.serverUrl}/images/${id}.jpg`,
      caption: img.caption,
      colour: img.colour,
      width: img.width,
      height: img.height,
    });
  }
  await meta.close();
  await buildIndex({ embeddings, output: indexDir, model: 'color-clip' });

  const queries = o.queries ?? [
    { name: 'red', text: 'red', count: 150 },
    { name: 'blue', text: 'blue', count: 100 },
    { name: 'green', text: 'green', count: 50 },
  ];
  const specPath = join(dir, 'spec.yaml');
  await writeFile(specPath, demoSpec(queries));
  return { modelDir, indexDir, specPath };
}

function demoSpec(queries: { name: string; text: string; count: number }[]): string {
  return [
    '# The demo stream: colour queries against the demo world (clipstream demo).',
    'index: ./index',
    'model: ./model',
    'queries:',
    ...queries.flatMap((q) => [
      `  - name: ${q.name}`,
      `    text: ${q.text}`,
      `    count: ${q.count}`,
      `    min_similarity: ${DEMO_MIN_SIMILARITY}`,
    ]),
    'seed: 0',
    'image: {size: 128, resize_mode: center_crop, encode_format: jpg, encode_quality: 90}',
    'fetch: {concurrency: 64, timeout: 5, retries: 1, allow_private_networks: true}  # the demo world lives on 127.0.0.1',
    '',
  ].join('\n');
}
