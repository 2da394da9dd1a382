import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { buildIndex } from '../../src/index/index.js';
import { writeNpy } from '../../src/io/npy.js';
import { openParquetWriter } from '../../src/io/parquet-write.js';
import { candidatesOf, readSpec, resolvePlan, writePlan, loadPlan } from '../../src/select/index.js';
import { tempDir } from '../helpers/tmp.js';
import { writeFile } from 'node:fs/promises';

// A plan of 210 000 candidates: more than a JavaScript call takes arguments (push(...list) throws past ~120 000).
const ROWS = 210_000;

test('a plan of 210 000 candidates resolves, and round-trips through its folder', async () => {
  const dir = await tempDir();
  const emb = join(dir, 'emb');
  await mkdir(join(emb, 'img_emb'), { recursive: true });
  await mkdir(join(emb, 'metadata'), { recursive: true });
  const vectors = Array.from({ length: ROWS }, (_, i) => Float32Array.of(1, (i % 97) / 1000, (i % 89) / 1000, 0));
  await writeNpy(join(emb, 'img_emb', 'img_emb_0.npy'), vectors, 4, 'float16');
  const meta = await openParquetWriter(join(emb, 'metadata', 'metadata_0.parquet'), [{ name: 'url', type: 'STRING' }], {
    rowGroupSize: 50_000,
  });
  for (let i = 0; i < ROWS; i++) await meta.writeRow({ url: `http://127.0.0.1:9/img/${i}.jpg` });
  await meta.close();
  await buildIndex({ embeddings: emb, output: join(dir, 'index'), indexType: 'flat' });
  const specPath = join(dir, 'spec.json');
  await writeFile(
    specPath,
    JSON.stringify({
      index: join(dir, 'index'),
      queries: [{ name: 'all', embedding: [1, 0, 0, 0], count: 70_000 }],
      oversample: 3,
    }),
  );
  const plan = await resolvePlan(await readSpec(specPath));
  expect(plan.candidates[0]).toHaveLength(ROWS);
  const [candidates] = await candidatesOf(plan);
  expect(new Set(candidates!.map((c) => c.id)).size).toBe(ROWS);
  expect(plan.header.queries[0]).toMatchObject({ planned: ROWS, available: ROWS, available_more: false });
  await writePlan(join(dir, 'plan'), plan);
  const [back] = await candidatesOf(await loadPlan(join(dir, 'plan')));
  expect(back!.map((c) => c.id)).toEqual(candidates!.map((c) => c.id));
}, 120_000);
