import { describe, expect, test } from 'vitest';
import { readSpec } from '../../src/select/index.js';
import { cacheNamespace, imageOptionsOf } from '../../src/stream/candidate.js';
import { tempDir } from '../helpers/tmp.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

describe('image options of a plan', () => {
  test("a plan folder written before the interpolation options gets img2dataset's defaults, and the cache namespace follows the filters", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'spec.json'), JSON.stringify({ index: 'idx', queries: [{ name: 'e', embedding: [1, 0], count: 1 }] }));
    const image = (await readSpec(join(dir, 'spec.json'))).image;
    const { upscale_interpolation: _up, downscale_interpolation: _down, ...older } = image;
    const fromOld = imageOptionsOf(older as typeof image);
    expect([fromOld.upscaleInterpolation, fromOld.downscaleInterpolation]).toEqual(['lanczos', 'area']);
    expect(cacheNamespace(fromOld)).toBe(cacheNamespace(imageOptionsOf(image)));
    expect(cacheNamespace(imageOptionsOf({ ...image, downscale_interpolation: 'nearest' }))).not.toBe(cacheNamespace(imageOptionsOf(image)));
  });
});
