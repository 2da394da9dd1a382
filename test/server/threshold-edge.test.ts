import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildIndex, openIndex } from '../../src/index/index.js';
import { writeNpy } from '../../src/io/npy.js';
import { openParquetWriter } from '../../src/io/parquet-write.js';
import { thresholdEdge } from '../../src/server/web-api.js';
import { tempDir } from '../helpers/tmp.js';

/** Seeded unit vectors in `dim` dimensions. */
function vectors(n: number, dim: number): Float32Array[] {
  let s = 11;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296) * 2 - 1;
  return Array.from({ length: n }, () => {
    const v = Float32Array.from({ length: dim }, rand);
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  });
}

async function indexOf(dir: string, rows: Float32Array[], urlOf: (i: number) => string) {
  const emb = join(dir, 'emb');
  await mkdir(join(emb, 'img_emb'), { recursive: true });
  await mkdir(join(emb, 'metadata'), { recursive: true });
  await writeNpy(join(emb, 'img_emb', 'img_emb_0.npy'), rows, rows[0]!.length, 'float16');
  const w = await openParquetWriter(join(emb, 'metadata', 'metadata_0.parquet'), [{ name: 'url', type: 'STRING' }]);
  for (let i = 0; i < rows.length; i++) await w.writeRow({ url: urlOf(i) });
  await w.close();
  await buildIndex({ embeddings: emb, output: join(dir, 'idx') });
  return openIndex(join(dir, 'idx'));
}

describe('the threshold edge with repeated urls', () => {
  it('the rows just below are the best distinct rows under the threshold, whatever the repeats above took', async () => {
    const rows = vectors(200, 16);
    const query = rows[0]!;
    const first = await indexOf(await tempDir(), rows, (i) => `http://x/${i}.jpg`);
    const ranked = (await first.search({ vector: query, minSimilarity: -1 })).map((r) => ({ ...r }));
    first.close();
    // the 20 best rows share two urls: url dedup keeps 2 of them
    const rank = new Map(ranked.map((r, i) => [r.id, i]));
    const index = await indexOf(await tempDir(), rows, (i) =>
      rank.get(i)! < 20 ? `http://x/dup-${rank.get(i)! % 2}.jpg` : `http://x/${i}.jpg`,
    );
    try {
      const min = (ranked[29]!.similarity + ranked[30]!.similarity) / 2;
      const wanted = ranked.slice(30, 36).map((r) => r.id);
      for (const bound of [10_000, 8]) {
        const edge = await thresholdEdge(index, { vector: query, dedupUrls: true }, min, 6, bound);
        expect(edge.count).toBe(bound === 8 ? 2 : 12); // past the bound: the distinct urls of its first 8 rows, "2+"
        expect(edge.more).toBe(bound === 8);
        expect(edge.below.map((r) => r.id)).toEqual(wanted);
        expect(edge.above.length).toBeGreaterThan(0);
        expect(edge.above.every((r) => r.similarity >= min - 1e-6)).toBe(true);
        const above = new Set(edge.above.map((r) => r.id));
        expect(edge.below.some((r) => above.has(r.id))).toBe(false);
      }
    } finally {
      index.close();
    }
  });
});
