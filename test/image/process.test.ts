import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { isClipstreamError } from '../../src/core/errors.js';
import { defaultImageOptions, processImage, readNpyImage, sniffImageFormat } from '../../src/image/index.js';
import { pixelBombPng } from '../helpers/image-server.js';
import { noise, ok, pixels, run, solid, withJpegSize, withPngSize } from './fixtures.js';

describe('encoding', () => {
  it.each([
    ['jpg', 'jpeg', 95],
    ['png', 'png', 9],
    ['webp', 'webp', 80],
  ] as const)('encode_format %s produces that format', async (encodeFormat, format, encodeQuality) => {
    const out = ok(await run(await solid(50, 40), { imageSize: 32, encodeFormat, encodeQuality }));
    expect(out.format).toBe(encodeFormat);
    expect(sniffImageFormat(out.data)).toBe(encodeFormat);
    expect((await sharp(out.data).metadata()).format).toBe(format);
  });

  it('png encode_quality is the zlib compression level: 0 stores, 9 compresses', async () => {
    const src = await sharp({ create: { width: 200, height: 200, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    const stored = ok(await run(src, { resizeMode: 'no', encodeFormat: 'png', encodeQuality: 0 }));
    const small = ok(await run(src, { resizeMode: 'no', encodeFormat: 'png', encodeQuality: 9 }));
    expect(stored.data.length).toBeGreaterThan(200 * 200 * 3); // level 0: raw deflate blocks
    expect(small.data.length).toBeLessThan(2000);
  });

  it('jpg and webp encode_quality is the quality (0 is accepted as the lowest)', async () => {
    const src = await sharp(noise(128, 128), { raw: { width: 128, height: 128, channels: 3 } })
      .png()
      .toBuffer();
    for (const encodeFormat of ['jpg', 'webp'] as const) {
      const [low, zero, high] = await Promise.all(
        [10, 0, 95].map(
          async (encodeQuality) => ok(await run(src, { resizeMode: 'no', encodeFormat, encodeQuality })).data.length,
        ),
      );
      expect(low).toBeLessThan(high!);
      expect(zero).toBeLessThanOrEqual(low!);
    }
  });

  it("jpg is written with libjpeg's standard Huffman tables, as cv2 writes it (no optimised second pass)", async () => {
    const src = await sharp(noise(128, 128), { raw: { width: 128, height: 128, channels: 3 } })
      .png()
      .toBuffer();
    const out = ok(await run(src, { resizeMode: 'no', encodeFormat: 'jpg', encodeQuality: 95 }));
    // ITU T.81 Annex K.3: the luminance DC table's code counts; an optimised table is built from the image's own
    // symbol statistics and differs for a noisy image
    const standardLuminanceDc = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    expect(huffmanTables(out.data)).toContainEqual({ tableClassAndId: 0x00, counts: standardLuminanceDc });
    const optimised = await sharp(src).jpeg({ quality: 95, optimiseCoding: true }).toBuffer();
    expect(huffmanTables(optimised)).not.toContainEqual({ tableClassAndId: 0x00, counts: standardLuminanceDc });
  });

  it.each(['jpeg', 'png', 'webp', 'gif', 'tiff'] as const)('reads %s input', async (format) => {
    const out = ok(await run(await solid(40, 20, format), { imageSize: 16, resizeMode: 'keep_ratio' }));
    expect([out.width, out.height, sniffImageFormat(out.data)]).toEqual([32, 16, 'jpg']);
  });
});

describe('npy output: the pixels themselves', () => {
  it("writes numpy's (h, w, 3) uint8 array, with the pixels a lossless png of the same pipeline has", async () => {
    const src = await sharp(noise(90, 60), { raw: { width: 90, height: 60, channels: 3 } })
      .jpeg()
      .toBuffer();
    const out = ok(await run(src, { imageSize: 32, resizeMode: 'center_crop', encodeFormat: 'npy' }));
    expect([out.format, out.width, out.height]).toEqual(['npy', 32, 32]);
    const header = out.data.subarray(0, 128).toString('latin1');
    expect(header.startsWith('\x93NUMPY\x01\x00')).toBe(true);
    expect(header).toContain("{'descr': '|u1', 'fortran_order': False, 'shape': (32, 32, 3), }");
    const image = readNpyImage(out.data)!;
    expect(out.data.length - image.pixels.length).toBe(128); // the data starts on a 64-byte boundary
    expect([image.width, image.height, image.pixels.length]).toEqual([32, 32, 32 * 32 * 3]);
    const png = ok(await run(src, { imageSize: 32, resizeMode: 'center_crop', encodeFormat: 'png', encodeQuality: 0 }));
    expect(image.pixels.equals(await sharp(png.data).raw().toBuffer())).toBe(true);
  });

  it('three channels whatever comes in: grey, and alpha flattened on white', async () => {
    const grey = await sharp({ create: { width: 40, height: 40, channels: 3, background: '#404040' } })
      .toColourspace('b-w')
      .png()
      .toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const g = readNpyImage(ok(await run(grey, { imageSize: 8, resizeMode: 'center_crop', encodeFormat: 'npy' })).data)!;
    expect([...g.pixels.subarray(0, 3)]).toEqual([0x40, 0x40, 0x40]);
    const halfRed = await sharp({
      create: { width: 40, height: 40, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0.5 } },
    })
      .png()
      .toBuffer();
    const r = readNpyImage(
      ok(await run(halfRed, { imageSize: 8, resizeMode: 'center_crop', encodeFormat: 'npy' })).data,
    )!;
    const [red, green, blue] = r.pixels.subarray(0, 3);
    expect(red).toBe(255);
    expect(Math.abs(green! - 128)).toBeLessThanOrEqual(1);
    expect(green).toBe(blue);
  });

  it('readNpyImage refuses what is not such an array', async () => {
    const good = ok(
      await run(await solid(20, 20), { imageSize: 8, resizeMode: 'center_crop', encodeFormat: 'npy' }),
    ).data;
    expect(readNpyImage(good)).not.toBeNull();
    expect(readNpyImage(good.subarray(0, good.length - 1))).toBeNull(); // truncated
    expect(readNpyImage(Buffer.from('not an array at all'))).toBeNull();
    const floats = Buffer.from(good.toString('latin1').replace("'|u1'", "'<f4'"), 'latin1');
    expect(readNpyImage(floats)).toBeNull();
    const grey = Buffer.from(good.toString('latin1').replace('(8, 8, 3)', '(8, 24, 1)'), 'latin1');
    expect(readNpyImage(grey)).toBeNull();
  });
});

describe('skip_reencode', () => {
  it('returns the identical bytes when no resize happens and the format matches', async () => {
    const jpeg = await solid(300, 200, 'jpeg');
    const kept = ok(await run(jpeg, { resizeMode: 'no', skipReencode: true }));
    expect(kept.data).toBe(jpeg);
    expect([kept.width, kept.height, kept.originalWidth, kept.originalHeight, kept.format]).toEqual([
      300,
      200,
      300,
      200,
      'jpg',
    ]);

    const png = await solid(10, 20, 'png');
    const small = ok(
      await run(png, {
        resizeMode: 'center_crop',
        resizeOnlyIfBigger: true,
        encodeFormat: 'png',
        encodeQuality: 9,
        skipReencode: true,
      }),
    );
    expect(small.data).toBe(png);
    // an identity resize (already the target size) changes no pixel either
    const square = await solid(64, 64, 'jpeg');
    expect(ok(await run(square, { imageSize: 64, resizeMode: 'border', skipReencode: true })).data).toBe(square);
  });

  it('does not keep bytes whose header libvips refuses, even when our marker walk read a size from them', async () => {
    const jpeg = await solid(40, 30, 'jpeg');
    const broken = Buffer.from(jpeg);
    let at = 2;
    while (broken[at + 1] !== 0xdb) at += 2 + broken.readUInt16BE(at + 2);
    broken[at + 4] = 0x05; // a quantisation table numbered 5: libjpeg's "Bogus DQT index"; the walk steps over DQT
    const out = await run(broken, { resizeMode: 'no', skipReencode: true });
    expect(out).toMatchObject({ ok: false, reason: 'decode_error', message: expect.stringMatching(/Bogus DQT index/) });
  });

  it('re-encodes when resized, when the format differs, with alpha, with an EXIF rotation, or when off', async () => {
    const jpeg = await solid(300, 200, 'jpeg');
    const resized = ok(await run(jpeg, { imageSize: 64, resizeMode: 'keep_ratio', skipReencode: true }));
    expect(resized.data).not.toBe(jpeg);
    expect([resized.width, resized.height]).toEqual([96, 64]);

    const png = await solid(30, 20, 'png');
    const converted = ok(await run(png, { resizeMode: 'no', skipReencode: true }));
    expect(sniffImageFormat(converted.data)).toBe('jpg');

    const alpha = await sharp({
      create: { width: 30, height: 20, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    const flattened = ok(
      await run(alpha, { resizeMode: 'no', encodeFormat: 'png', encodeQuality: 9, skipReencode: true }),
    );
    expect(flattened.data).not.toBe(alpha);
    expect((await sharp(flattened.data).metadata()).hasAlpha).toBe(false);

    const rotated = await sharp(jpeg).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    const turned = ok(await run(rotated, { resizeMode: 'no', skipReencode: true }));
    expect(turned.data).not.toBe(rotated);
    expect([turned.width, turned.height]).toEqual([200, 300]);

    expect(ok(await run(jpeg, { resizeMode: 'no', skipReencode: false })).data).not.toBe(jpeg);
  });
});

describe('failure reasons (never exceptions)', () => {
  it('not_an_image: HTML, JSON, empty and short bodies', async () => {
    for (const body of [
      '<!doctype html><html><body>moved</body></html>',
      '{"error": "not found"}',
      '',
      'GIF8',
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    ]) {
      expect(await run(Buffer.from(body))).toMatchObject({ ok: false, reason: 'not_an_image' });
    }
  });

  it('decode_error: the first half of a photo-like JPEG fails instead of decoding to a grey half-image', async () => {
    const jpeg = await sharp(noise(300, 200), { raw: { width: 300, height: 200, channels: 3 } })
      .jpeg({ quality: 90 })
      .toBuffer();
    expect(jpeg.length).toBeGreaterThan(20_000); // the cut lands in the entropy-coded data, past a valid header
    expect(await run(jpeg.subarray(0, jpeg.length >> 1))).toMatchObject({
      ok: false,
      reason: 'decode_error',
      originalWidth: 300,
      originalHeight: 200,
    });
    expect(await run(jpeg.subarray(0, jpeg.length >> 1), { imageSize: 64, resizeMode: 'center_crop' })).toMatchObject({
      ok: false,
      reason: 'decode_error',
    });
  });

  it('decode_error: a JPEG cut inside its header, a truncated PNG, a PNG with a bad CRC, garbage after a magic number', async () => {
    const jpeg = await solid(300, 200, 'jpeg');
    const png = await sharp(noise(300, 200), { raw: { width: 300, height: 200, channels: 3 } })
      .png()
      .toBuffer();
    const badCrc = Buffer.from(png);
    badCrc[png.length >> 1]! ^= 0x55;
    const garbage = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(200, 7)]);
    for (const bytes of [jpeg.subarray(0, jpeg.length >> 1), png.subarray(0, png.length >> 1), badCrc, garbage]) {
      const outcome = await run(bytes);
      expect(outcome).toMatchObject({ ok: false, reason: 'decode_error' });
      expect(outcome.ok || outcome.message.startsWith('Image decoding error')).toBe(true);
    }
  });

  it('decode_error: a recognised but unsupported format (BMP)', async () => {
    const bmp = Buffer.alloc(70);
    bmp.write('BM', 0);
    expect(await run(bmp)).toMatchObject({ ok: false, reason: 'decode_error' });
  });

  it('too_many_pixels: a real 30000x30000 PNG bomb fails fast without decoding', async () => {
    const bomb = pixelBombPng(30000, 30000);
    const rss = process.memoryUsage().rss;
    const start = performance.now();
    expect(await run(bomb)).toMatchObject({
      ok: false,
      reason: 'too_many_pixels',
      originalWidth: 30000,
      originalHeight: 30000,
    });
    expect(performance.now() - start).toBeLessThan(1000);
    expect(process.memoryUsage().rss - rss).toBeLessThan(100 * 2 ** 20); // decoding would take ≥ 900 MB
  });

  it('too_many_pixels: sharp-made PNG and JPEG headers declaring 30000x30000', async () => {
    const png = withPngSize(
      await sharp({ create: { width: 16, height: 16, channels: 3, background: '#fff' } })
        .png()
        .toBuffer(),
      30000,
      30000,
    );
    const jpeg = withJpegSize(await solid(16, 16, 'jpeg'), 30000, 30000);
    expect((await sharp(png, { limitInputPixels: false }).metadata()).width).toBe(30000);
    expect((await sharp(jpeg, { limitInputPixels: false }).metadata()).height).toBe(30000);
    for (const bomb of [png, jpeg]) {
      const start = performance.now();
      expect(await run(bomb)).toMatchObject({ ok: false, reason: 'too_many_pixels', originalWidth: 30000 });
      expect(performance.now() - start).toBeLessThan(1000);
    }
  });

  it('too_many_pixels follows maxPixels (limitInputPixels semantics: w*h > limit)', async () => {
    const img = await solid(20, 10);
    expect(await run(img, { maxPixels: 199 })).toMatchObject({ ok: false, reason: 'too_many_pixels' });
    expect((await run(img, { maxPixels: 200, resizeMode: 'no' })).ok).toBe(true);
  });

  it("too_small / area_too_large / aspect_ratio_too_large on the original size, with img2dataset's messages", async () => {
    const img = await solid(100, 20);
    expect(await run(img, { minImageSize: 21 })).toEqual({
      ok: false,
      reason: 'too_small',
      message: 'image too small',
      originalWidth: 100,
      originalHeight: 20,
    });
    expect(await run(img, { maxImageArea: 1999 })).toMatchObject({
      ok: false,
      reason: 'area_too_large',
      message: 'image area too large',
    });
    expect(await run(img, { maxAspectRatio: 4.9 })).toMatchObject({
      ok: false,
      reason: 'aspect_ratio_too_large',
      message: 'aspect ratio too large',
    });
    // boundaries pass; the filters look at the original, not the resized image (here 1280x256)
    expect(
      (
        await run(img, {
          minImageSize: 20,
          maxImageArea: 2000,
          maxAspectRatio: 5,
          imageSize: 256,
          resizeMode: 'keep_ratio',
        })
      ).ok,
    ).toBe(true);
  });

  it('encode_error: an output too large for the format or over the pixel limit', async () => {
    const wide = await solid(17000, 4);
    expect(await run(wide, { resizeMode: 'no', encodeFormat: 'webp', encodeQuality: 80 })).toMatchObject({
      ok: false,
      reason: 'encode_error',
      originalWidth: 17000,
    });
    expect((await run(wide, { resizeMode: 'no', encodeFormat: 'png', encodeQuality: 1 })).ok).toBe(true);
    // 10x20 (200 pixels) upscaled by keep_ratio to 256x512 = 131072 pixels
    expect(await run(await solid(10, 20), { resizeMode: 'keep_ratio', maxPixels: 100_000 })).toMatchObject({
      ok: false,
      reason: 'encode_error',
    });
  });

  it('rejects bad options with INVALID_OPTION (png quality is a 0–9 level)', async () => {
    const img = await solid(10, 10);
    const err = await processImage(img, { ...defaultImageOptions, encodeFormat: 'png' }).catch((e: unknown) => e);
    expect(isClipstreamError(err) && err.code).toBe('INVALID_OPTION');
    expect((err as Error).message).toBe('Expected a compression level 0–9 (png) for encodeQuality but received 95');
    await expect(processImage(img, { ...defaultImageOptions, imageSize: 0 })).rejects.toThrow(
      'Expected a positive integer for imageSize but received 0',
    );
  });
});

describe('many at once', () => {
  it('processes concurrently with consistent results', async () => {
    const src = await solid(640, 480, 'jpeg', '#336699');
    const outs = await Promise.all(
      Array.from({ length: 32 }, () => run(src, { imageSize: 64, resizeMode: 'center_crop' })),
    );
    for (const out of outs) expect(ok(out)).toMatchObject({ width: 64, height: 64 });
    const px = await pixels(ok(outs[0]!).data);
    expect(px.channels).toBe(3);
  });
});

/** The DHT tables of a JPEG: class and id byte and the 16 code counts of each. */
function huffmanTables(jpeg: Buffer): { tableClassAndId: number; counts: number[] }[] {
  const tables: { tableClassAndId: number; counts: number[] }[] = [];
  let at = 2;
  while (at + 4 <= jpeg.length && jpeg[at] === 0xff && jpeg[at + 1] !== 0xda) {
    const length = jpeg.readUInt16BE(at + 2);
    if (jpeg[at + 1] === 0xc4) {
      for (let t = at + 4; t < at + 2 + length;) {
        const counts = [...jpeg.subarray(t + 1, t + 17)];
        tables.push({ tableClassAndId: jpeg[t]!, counts });
        t += 17 + counts.reduce((a, b) => a + b, 0);
      }
    }
    at += 2 + length;
  }
  return tables;
}
