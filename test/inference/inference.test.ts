import { createWriteStream, existsSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadClipModel, writeColorClip } from '../../src/clip/index.js';
import { downloadDemoShards } from '../helpers/demo-shards.js';
import { openEmbeddingFolder, readEmbeddingBatches } from '../../src/io/embedding-folder.js';
import { runInference } from '../../src/inference/run.js';
import { tempDir } from '../helpers/tmp.js';
import { solidImage } from '../clip/helpers.js';

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i]!, 0);

describe('clipstream inference', () => {
  it('download → inference writes an aligned clip-retrieval folder where the text "red" retrieves the red images', async () => {
    const dir = await tempDir();
    const demo = await downloadDemoShards(join(dir, 'demo'), 60);
    const modelDir = await writeColorClip(join(dir, 'model'));
    const emb = join(dir, 'emb');
    const summary = await runInference({
      input: join(dir, 'demo', 'shards'),
      outputFolder: emb,
      model: modelDir,
      batchSize: 8,
    });
    expect(summary).toMatchObject({ count: demo.delivered, partitions: ['00000'], withText: true });
    expect(existsSync(join(emb, 'text_emb', 'text_emb_00000.npy'))).toBe(true);

    const folder = await openEmbeddingFolder(emb);
    expect(folder.count).toBe(demo.delivered);
    expect(folder.metadataColumns).toEqual(
      expect.arrayContaining(['image_path', 'url', 'caption', 'colour', 'key', 'sha256']),
    );
    const rows: { vector: Float32Array; text: Float32Array; meta: Record<string, unknown> }[] = [];
    for await (const b of readEmbeddingBatches(folder, { batchRows: 16 })) {
      b.metadata.forEach((meta, i) =>
        rows.push({
          vector: b.vectors.subarray(i * folder.dim, (i + 1) * folder.dim),
          text: b.textVectors!.subarray(i * folder.dim, (i + 1) * folder.dim),
          meta,
        }),
      );
    }
    expect(rows).toHaveLength(demo.delivered);
    for (const r of rows) {
      expect(Math.abs(dot(r.vector, r.vector) - 1)).toBeLessThan(0.01); // L2-normalised (float16)
      expect(String(r.meta.image_path)).toMatch(/^00000\.tar\/\d+\.jpg$/);
      expect(String(r.meta.caption)).toContain(String(r.meta.colour)); // caption row aligned with its image
    }

    const model = await loadClipModel(modelDir);
    const [red] = await model.encodeText(['red']);
    await model.close();
    const ranked = rows
      .map((r) => ({ colour: r.meta.colour, score: dot(red!, r.vector) }))
      .sort((a, b) => b.score - a.score);
    const reds = rows.filter((r) => r.meta.colour === 'red').length;
    expect(reds).toBeGreaterThan(3);
    expect(ranked.slice(0, reds).every((r) => r.colour === 'red')).toBe(true);
    expect(ranked[0]!.score).toBeGreaterThan(0.9);
  });

  it('an image folder with broken files: those are left out and named, the rest stays aligned', async () => {
    const dir = await tempDir();
    const images = join(dir, 'images');
    await mkdir(images);
    const red = await solidImage([220, 30, 30], 'jpeg');
    await writeFile(join(images, 'a.jpg'), red);
    await writeFile(join(images, 'a.txt'), 'a red square');
    await writeFile(join(images, 'b.png'), await solidImage([30, 60, 210], 'png'));
    await writeFile(join(images, 'c.jpg'), red.subarray(0, Math.floor(red.length / 2))); // truncated
    await writeFile(join(images, 'd.jpg'), 'not an image at all');
    await writeFile(join(images, 'e.webp'), await solidImage([30, 170, 60], 'webp'));
    const emb = join(dir, 'emb');
    const summary = await runInference({
      input: images,
      outputFolder: emb,
      model: await writeColorClip(join(dir, 'model')),
      batchSize: 2,
    });
    expect(summary.count).toBe(3);
    expect(summary.skipped.sort()).toEqual(['c.jpg', 'd.jpg']);
    const folder = await openEmbeddingFolder(emb);
    expect(folder.count).toBe(3);
    const paths: unknown[] = [];
    for await (const b of readEmbeddingBatches(folder, { batchRows: 8 }))
      paths.push(...b.metadata.map((m) => m.image_path));
    expect(paths).toEqual(['a.jpg', 'b.png', 'e.webp']);
  });

  it('a sample whose json is malformed, not an object or nested too deep is embedded without its fields, named, and the run goes on', async () => {
    // issue 15: one malformed .json stopped the whole run with "internal error"
    const dir = await tempDir();
    const red = await solidImage([220, 30, 30], 'jpeg');
    const jsons = [
      '{"url": "http://a/0", "colour": "red"}',
      '{"url": "http://a/1", broken',
      '[1, 2, 3]',
      `{"url": "http://a/3", "deep": ${'['.repeat(200_000)}${']'.repeat(200_000)}}`,
      '{"url": "http://a/4", "colour": "red"}',
    ];
    const pack = tar.pack();
    jsons.forEach((json, i) => {
      pack.entry({ name: `s${i}.jpg` }, red);
      pack.entry({ name: `s${i}.txt` }, `caption ${i}`);
      pack.entry({ name: `s${i}.json` }, json);
    });
    pack.finalize();
    await pipeline(pack, createWriteStream(join(dir, '00007.tar')));
    const emb = join(dir, 'emb');
    const summary = await runInference({
      input: join(dir, '00007.tar'),
      outputFolder: emb,
      model: await writeColorClip(join(dir, 'model')),
    });
    expect(summary.count).toBe(5);
    expect(summary.metadataLeftOut).toEqual([
      expect.stringMatching(/^00007\.tar\/s1\.json: not valid JSON \(/),
      '00007.tar/s2.json: not a JSON object',
      '00007.tar/s3.json: nested deeper than 100 levels',
    ]);
    const folder = await openEmbeddingFolder(emb);
    const metas: Record<string, unknown>[] = [];
    for await (const b of readEmbeddingBatches(folder, { batchRows: 8 })) metas.push(...b.metadata);
    expect(metas.map((m) => [m.image_path, m.url, m.caption])).toEqual([
      ['00007.tar/s0.jpg', 'http://a/0', 'caption 0'],
      ['00007.tar/s1.jpg', null, 'caption 1'],
      ['00007.tar/s2.jpg', null, 'caption 2'],
      ['00007.tar/s3.jpg', null, 'caption 3'],
      ['00007.tar/s4.jpg', 'http://a/4', 'caption 4'],
    ]);
  });

  it('a missing input names it', async () => {
    const dir = await tempDir();
    await expect(
      runInference({ input: join(dir, 'nope'), outputFolder: join(dir, 'o'), model: dir }),
    ).rejects.toMatchObject({
      code: 'INPUT_NOT_FOUND',
      message: expect.stringContaining('nope'),
    });
  });
});
