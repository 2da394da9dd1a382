import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll } from 'vitest';
import { writeColorClip } from '../../src/clip/color-clip.js';
import { loadClipModel, type ClipModel } from '../../src/clip/model.js';

export type Rgb255 = readonly [number, number, number];

/** A solid-colour image, encoded. */
export function solidImage(
  rgb: Rgb255,
  format: 'jpeg' | 'png' | 'webp' = 'png',
  width = 64,
  height = 48,
): Promise<Buffer> {
  const [r, g, b] = rgb;
  return sharp({ create: { width, height, channels: 3, background: { r, g, b } } })
    .toFormat(format)
    .toBuffer();
}

/** A mostly-`rgb` image: every pixel jittered by up to ±`noise`, and one pixel in `strayEvery` of a random colour. */
export function noisyImage(
  rgb: Rgb255,
  { noise = 60, strayEvery = 8, width = 64, height = 48, seed = 1 } = {},
): Promise<Buffer> {
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const data = Buffer.alloc(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const stray = rand() < 1 / strayEvery;
    for (let c = 0; c < 3; c++) {
      const v = stray ? rand() * 255 : rgb[c]! + (rand() * 2 - 1) * noise;
      data[p * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function norm(a: Float32Array): number {
  return Math.sqrt(cosine(a, a));
}

/** One color-CLIP folder and loaded model for a whole test file (generated in beforeAll, removed in afterAll). */
export function sharedColorClip(opts: { dim?: number } = {}): { dir: () => string; model: () => ClipModel } {
  let dir: string | undefined;
  let model: ClipModel | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clipstream-color-clip-'));
    await writeColorClip(dir, opts);
    model = await loadClipModel(dir);
  });
  afterAll(async () => {
    await model?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });
  return {
    dir: () => dir ?? assertNever('color-CLIP folder not ready'),
    model: () => model ?? assertNever('color-CLIP model not loaded'),
  };
}

function assertNever(message: string): never {
  throw new Error(message);
}
