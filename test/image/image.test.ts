import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { ImageOutcome } from '../../src/core/types.js';
import { defaultImageOptions, hashBytes, processImage, sniffImageFormat, type ImageOptions, type ResizeMode } from '../../src/image/index.js';
import { pixelBombPng } from '../helpers/image-server.js';

const solid = (width: number, height: number, format: 'jpeg' | 'png' | 'webp' = 'jpeg', background = '#ff0000') =>
  sharp({ create: { width, height, channels: 3, background } })[format]().toBuffer();

const run = (bytes: Buffer, o: Partial<ImageOptions>) => processImage(bytes, { ...defaultImageOptions, ...o });

function ok(outcome: ImageOutcome) {
  if (!outcome.ok) throw new Error(`expected success, got ${outcome.reason}: ${outcome.message}`);
  return outcome;
}

// Expected sizes computed by hand from img2dataset's resizer (albumentations rounding, Python round-half-even).
const table: [w: number, h: number, size: number, mode: ResizeMode, onlyIfBigger: boolean, out: [number, number]][] = [
  [640, 480, 256, 'keep_ratio', false, [341, 256]],
  [640, 480, 256, 'keep_ratio_largest', false, [256, 192]],
  [640, 480, 256, 'center_crop', false, [256, 256]],
  [640, 480, 256, 'border', false, [256, 256]],
  [640, 480, 256, 'no', false, [640, 480]],
  [640, 480, 64, 'keep_ratio', false, [85, 64]],
  [640, 480, 64, 'keep_ratio_largest', false, [64, 48]],
  [300, 800, 256, 'keep_ratio', false, [256, 683]],
  [300, 800, 256, 'keep_ratio_largest', false, [96, 256]],
  [300, 800, 256, 'center_crop', false, [256, 256]],
  [300, 800, 64, 'border', false, [64, 64]],
  [256, 256, 256, 'center_crop', false, [256, 256]],
  [10, 20, 256, 'keep_ratio', false, [256, 512]],
  [10, 20, 256, 'keep_ratio_largest', false, [128, 256]],
  [10, 20, 256, 'center_crop', false, [256, 256]],
  [10, 20, 256, 'border', false, [256, 256]],
  [10, 20, 256, 'keep_ratio', true, [10, 20]],
  [10, 20, 256, 'keep_ratio_largest', true, [10, 20]],
  [10, 20, 256, 'center_crop', true, [10, 20]],
  [10, 20, 256, 'border', true, [10, 20]],
  [640, 480, 256, 'keep_ratio', true, [341, 256]],
  [3, 2, 3, 'keep_ratio', false, [4, 3]], // 4.5 rounds to 4 (half to even), as Python's round
];

describe('processImage', () => {
  it.each(table)('%ix%i to %i with %s (only if bigger: %s) gives exactly %j', async (w, h, size, resizeMode, resizeOnlyIfBigger, [ew, eh]) => {
    const out = ok(await run(await solid(w, h), { imageSize: size, resizeMode, resizeOnlyIfBigger }));
    expect([out.width, out.height]).toEqual([ew, eh]);
    expect([out.originalWidth, out.originalHeight]).toEqual([w, h]);
    const meta = await sharp(out.data).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', ew, eh]);
  });

  it('border pads with white around the resized image, centred as albumentations does', async () => {
    const out = ok(await run(await solid(640, 480, 'png', '#0000ff'), { imageSize: 256, resizeMode: 'border', encodeFormat: 'png', encodeQuality: 3 }));
    const { data, info } = await sharp(out.data).raw().toBuffer({ resolveWithObject: true });
    const px = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
    expect(px(128, 5)).toEqual([255, 255, 255]); // top band (32 rows)
    expect(px(128, 250)).toEqual([255, 255, 255]); // bottom band
    expect(px(128, 128)).toEqual([0, 0, 255]);
    expect(px(128, 31)).toEqual([255, 255, 255]);
    expect(px(128, 33)).toEqual([0, 0, 255]);
  });

  it('flattens alpha on white', async () => {
    const transparent = await sharp({ create: { width: 40, height: 30, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    const out = ok(await run(transparent, { resizeMode: 'no' }));
    const stats = await sharp(out.data).stats();
    expect(stats.channels.slice(0, 3).map((c) => Math.round(c.mean))).toEqual([255, 255, 255]);
  });

  it('applies EXIF orientation: a 200x100 JPEG tagged 6 is a 100x200 image', async () => {
    const tagged = await sharp({ create: { width: 200, height: 100, channels: 3, background: '#00ff00' } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const out = ok(await run(tagged, { resizeMode: 'no' }));
    expect([out.originalWidth, out.originalHeight, out.width, out.height]).toEqual([100, 200, 100, 200]);
  });

  it.each([
    ['jpg', 'jpeg', 95],
    ['png', 'png', 9],
    ['webp', 'webp', 80],
  ] as const)('encodes %s', async (encodeFormat, format, encodeQuality) => {
    const out = ok(await run(await solid(50, 40), { imageSize: 32, encodeFormat, encodeQuality }));
    expect(out.format).toBe(encodeFormat);
    expect(sniffImageFormat(out.data)).toBe(encodeFormat);
    expect((await sharp(out.data).metadata()).format).toBe(format);
  });

  it('png quality is the compression level: 9 is smaller than 0', async () => {
    const src = await sharp({ create: { width: 200, height: 200, channels: 3, background: '#808080' } }).png().toBuffer();
    const fast = ok(await run(src, { resizeMode: 'no', encodeFormat: 'png', encodeQuality: 0 }));
    const small = ok(await run(src, { resizeMode: 'no', encodeFormat: 'png', encodeQuality: 9 }));
    expect(small.data.length).toBeLessThan(fast.data.length);
  });

  it('skip_reencode keeps the original bytes when nothing changes and the format matches', async () => {
    const src = await solid(64, 64);
    const kept = ok(await run(src, { imageSize: 64, resizeMode: 'center_crop', skipReencode: true }));
    expect(kept.data).toBe(src);
    const reencoded = ok(await run(src, { imageSize: 32, resizeMode: 'center_crop', skipReencode: true }));
    expect(reencoded.data).not.toBe(src);
  });

  it('turns bad bytes into reasons, never exceptions', async () => {
    const jpeg = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#123456' } }).jpeg().toBuffer();
    const html = Buffer.from('<!doctype html><html><body>moved</body></html>');
    expect(await run(html, {})).toMatchObject({ ok: false, reason: 'not_an_image' });
    expect(await run(jpeg.subarray(0, jpeg.length >> 1), {})).toMatchObject({ ok: false, reason: 'decode_error' });
    expect(await run(Buffer.alloc(0), {})).toMatchObject({ ok: false, reason: 'not_an_image' });
  });

  it('refuses a pixel bomb from its header, fast', async () => {
    const bomb = await pixelBombPng(30000, 30000);
    const start = performance.now();
    expect(await run(bomb, {})).toMatchObject({ ok: false, reason: 'too_many_pixels', originalWidth: 30000 });
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it("filters on the original size with img2dataset's messages", async () => {
    const img = await solid(100, 20);
    expect(await run(img, { minImageSize: 50 })).toMatchObject({ ok: false, reason: 'too_small', message: 'image too small' });
    expect(await run(img, { maxImageArea: 1999 })).toMatchObject({ ok: false, reason: 'area_too_large', message: 'image area too large' });
    expect(await run(img, { maxAspectRatio: 4 })).toMatchObject({ ok: false, reason: 'aspect_ratio_too_large', message: 'aspect ratio too large' });
    expect((await run(img, { minImageSize: 20, maxImageArea: 2000, maxAspectRatio: 5 })).ok).toBe(true);
  });
});

describe('hashBytes', () => {
  it('matches known vectors', () => {
    const abc = Buffer.from('abc');
    expect(hashBytes(abc, 'sha256')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashBytes(abc, 'md5')).toBe('900150983cd24fb0d6963f7d28e17f72');
    expect(hashBytes(abc, 'sha512')).toBe(createHash('sha512').update(abc).digest('hex'));
    expect(hashBytes(abc, 'sha512').slice(0, 16)).toBe('ddaf35a193617aba');
  });
});
