import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { readSpec } from '../../src/select/index.js';
import { imageOptionsOfSpec as imageOptionsOf } from '../../src/image/index.js';
import { cacheNamespace } from '../../src/stream/candidate.js';
import { tempDir } from '../helpers/tmp.js';

describe('image options of a plan', () => {
  test('the cache namespace follows the filters', async () => {
    const dir = await tempDir();
    await writeFile(
      join(dir, 'spec.json'),
      JSON.stringify({ index: 'idx', queries: [{ name: 'e', embedding: [1, 0], count: 1 }] }),
    );
    const image = (await readSpec(join(dir, 'spec.json'))).image;
    const options = imageOptionsOf(image);
    expect([options.upscaleInterpolation, options.downscaleInterpolation]).toEqual(['lanczos', 'area']);
    const again = imageOptionsOf((await readSpec(join(dir, 'spec.json'))).image);
    expect(cacheNamespace(again)).toBe(cacheNamespace(options)); // the same filters read again: the same namespace
    expect(cacheNamespace(imageOptionsOf({ ...image, downscale_interpolation: 'nearest' }))).not.toBe(
      cacheNamespace(options),
    );
    expect(cacheNamespace(imageOptionsOf({ ...image, upscale_interpolation: 'cubic' }))).not.toBe(
      cacheNamespace(options),
    );
  });
});
