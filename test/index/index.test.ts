import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadClipModel, writeColorClip } from '../../src/clip/index.js';
import { downloadDemoShards } from '../helpers/demo-shards.js';
import { buildIndex, openIndex } from '../../src/index/index.js';
import { runInference } from '../../src/inference/run.js';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';

/** url list → download → inference → index, once for the file: the red / blue answers are known. */
let dir: string;
let red: Float32Array;
let blue: Float32Array;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-index-'));
  await downloadDemoShards(join(dir, 'demo'), 90);
  const model = await writeColorClip(join(dir, 'model'));
  await runInference({ input: join(dir, 'demo', 'shards'), outputFolder: join(dir, 'emb'), model });
  const clip = await loadClipModel(model);
  [red, blue] = (await clip.encodeText(['red', 'blue'])) as [Float32Array, Float32Array];
  await clip.close();
});

describe('index + search', () => {
  it('imports an embedding folder with explicit ids and its metadata, and the text "red" finds the red images', async () => {
    const out = join(dir, 'index');
    const info = await buildIndex({ embeddings: join(dir, 'emb'), output: out });
    expect(info).toMatchObject({
      dim: 64,
      metric: 'ip',
      ann: { type: 'flat' },
      recall_at_10: 1,
      has_text: true,
      partitions: ['00000'],
    });
    const index = await openIndex(out);
    const top = await index.search({ vector: red, k: 5 });
    expect(top).toHaveLength(5);
    for (const r of top) {
      expect(r.colour).toBe('red');
      expect(r.similarity).toBeGreaterThan(0.9);
      expect(String(r.caption)).toContain('red');
    }
    expect(top.map((r) => r.similarity)).toEqual([...top.map((r) => r.similarity)].sort((a, b) => b - a));
    const all = await index.search({ vector: red, minSimilarity: 0.9 });
    expect(all.length).toBeGreaterThan(5); // everything above the threshold, not just k
    expect(all.every((r) => r.colour === 'red' && r.similarity >= 0.9)).toBe(true);
    expect(all.truncated).toBe(false);
    const reds =
      info.count > 0
        ? (await index.search({ vector: red, minSimilarity: -1 })).filter((r) => r.colour === 'red').length
        : 0;
    expect(all.length).toBe(reds);
    const blueOnly = await index.search({ vector: red, k: 3, where: "colour = 'blue'" });
    expect(blueOnly.map((r) => r.colour)).toEqual(['blue', 'blue', 'blue']);
    expect((await index.search({ vector: blue, k: 1 }))[0]!.colour).toBe('blue');
    index.close();
  });

  it('ids follow the folder order and rerunning appends nothing new', async () => {
    const out = join(dir, 'index2');
    const first = await buildIndex({ embeddings: join(dir, 'emb'), output: out });
    const again = await buildIndex({ embeddings: join(dir, 'emb'), output: out });
    expect(again.count).toBe(first.count);
    const index = await openIndex(out);
    const rows = await index.search({ vector: red, minSimilarity: -1 });
    expect(rows.map((r) => r.id).sort((a, b) => a - b)).toEqual(Array.from({ length: first.count }, (_, i) => i));
    index.close();
  });

  it('refuses a query of the wrong dimension, a bad predicate and a folder that is not an index, naming them', async () => {
    const out = join(dir, 'index3');
    await buildIndex({ embeddings: join(dir, 'emb'), output: out });
    const index = await openIndex(out);
    await expect(index.search({ vector: new Float32Array(512) })).rejects.toMatchObject({
      code: 'QUERY_INVALID',
      message: expect.stringMatching(/512 dimensions .* 64/),
    });
    await expect(index.search({ vector: red, where: 'nope = 1' })).rejects.toMatchObject({
      code: 'QUERY_INVALID',
      message: expect.stringContaining('nope = 1'),
    });
    index.close();
    await expect(openIndex(join(dir, 'emb'))).rejects.toMatchObject({
      code: 'INDEX_INVALID',
      hint: expect.stringContaining('clipstream index'),
    });
  });
});
