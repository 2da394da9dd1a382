import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { gaussianKernel, kernelSize, maskRects, parseBlurBoxes } from '../../src/image/blur.js';
import { defaultImageOptions, processImage } from '../../src/image/index.js';

/** A 200×100 checkerboard of 4-pixel red / white squares as a lossless PNG: detail that a blur flattens. */
async function checkerPng(width = 200, height = 100): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const white = (Math.floor(x / 4) + Math.floor(y / 4)) % 2 === 1;
      raw.set(white ? [255, 255, 255] : [200, 20, 20], (y * width + x) * 3);
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

async function pixels(png: Buffer) {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, channels: info.channels };
}

/** Variance of the green channel (20 or 255 in the checkerboard) over a rectangle. */
function variance(
  img: { data: Buffer; width: number; channels: number },
  x0: number,
  y0: number,
  x1: number,
  y1: number,
): number {
  const values: number[] = [];
  for (let y = y0; y < y1; y++)
    for (let x = x0; x < x1; x++) values.push(img.data[(y * img.width + x) * img.channels + 1]!);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
}

const lossless = { ...defaultImageOptions, encodeFormat: 'png' as const, encodeQuality: 1 };

describe('bbox blur (img2dataset blurrer.py)', () => {
  it('blurs inside a box and leaves pixels beyond the feathered edge exactly as they were', async () => {
    const png = await checkerPng();
    const options = { ...lossless, resizeMode: 'no' as const };
    const plain = await pixels(((await processImage(png, options)) as { data: Buffer }).data);
    const out = await processImage(png, options, { blur: [[0.25, 0.2, 0.5, 0.8]] });
    expect(out.ok).toBe(true);
    const blurred = await pixels((out as { data: Buffer }).data);
    // box 50..100 × 20..80; grown by a tenth of its longer side (60 px → 6): 44..106 × 14..86, kernel 2·6+1 = 13
    expect(variance(plain, 60, 30, 90, 70)).toBeGreaterThan(3000);
    expect(variance(blurred, 60, 30, 90, 70)).toBeLessThan(variance(plain, 60, 30, 90, 70) / 20);
    // further than the kernel radius (6) from the grown box: untouched, to the byte
    for (const [x0, x1] of [
      [0, 37],
      [113, 200],
    ] as const) {
      for (let y = 0; y < 100; y++) {
        for (let x = x0; x < x1; x++) {
          const i = (y * 200 + x) * 3;
          expect([...blurred.data.subarray(i, i + 3)]).toEqual([...plain.data.subarray(i, i + 3)]);
        }
      }
    }
    // the edge is feathered: between the grown box and the kernel's reach pixels change, but less than inside
    const edge = variance(blurred, 38, 30, 43, 70);
    expect(edge).toBeLessThan(variance(plain, 38, 30, 43, 70));
    expect(edge).toBeGreaterThan(variance(blurred, 60, 30, 90, 70));
  });

  it('blurs after the resize and before the crop: boxes are relative to the resized, uncropped image', async () => {
    const png = await checkerPng(400, 200);
    // center_crop to 100: resized to 200×100, then x 50..150 kept. A box on the left quarter of the resized image
    // (x 0..50) is cropped away entirely, except for what feathering spills over the crop line.
    const options = {
      ...lossless,
      imageSize: 100,
      resizeMode: 'center_crop' as const,
      downscaleInterpolation: 'nearest' as const,
    };
    const plain = await pixels(((await processImage(png, options)) as { data: Buffer }).data);
    const left = await pixels(
      ((await processImage(png, options, { blur: [[0, 0, 0.2, 1]] })) as { data: Buffer }).data,
    );
    const right = await pixels(
      ((await processImage(png, options, { blur: [[0.5, 0, 0.75, 1]] })) as { data: Buffer }).data,
    );
    expect(variance(left, 20, 0, 100, 100)).toBe(variance(plain, 20, 0, 100, 100));
    // x 100..150 of the resized image = 50..100 of the crop
    expect(variance(right, 55, 10, 95, 90)).toBeLessThan(variance(plain, 55, 10, 95, 90) / 20);
  });

  it('a box list with no pixels in it, or null, changes nothing', async () => {
    const png = await checkerPng();
    const plain = (await processImage(png, lossless)) as { data: Buffer };
    for (const blur of [[], [[0.5, 0.5, 0.5, 0.5]], [[0.9, 0.9, 0.1, 0.1]], undefined] as const) {
      const out = (await processImage(png, lossless, { blur: blur as never })) as { data: Buffer };
      expect(Buffer.compare(out.data, plain.data)).toBe(0);
    }
  });

  it("computes the mask and the kernel as blurrer.py: int() truncation, a tenth of the longest side, cv2's kernel", () => {
    // 200×100 image, box 0.1..0.305 × 0.2..0.9: pixels 20..61 × 20..90 (int truncates), side 70, grown by 7
    expect(maskRects([[0.1, 0.2, 0.305, 0.9]], 200, 100)).toEqual({
      rects: [{ x0: 13, y0: 13, x1: 68, y1: 97 }],
      longestSide: 70,
    });
    // clipped to size - 1, exclusive end: the last row and column are never in the mask (as numpy slicing there)
    expect(maskRects([[0, 0, 1, 1]], 10, 10).rects).toEqual([{ x0: 0, y0: 0, x1: 9, y1: 9 }]);
    expect(maskRects([[0.9, 0.9, 0.1, 0.1]], 10, 10)).toEqual({ rects: [], longestSide: 0 });
    expect([kernelSize(0), kernelSize(25), kernelSize(70), kernelSize(256)]).toEqual([3, 7, 15, 53]);
    expect(gaussianKernel(3)).toEqual([0.25, 0.5, 0.25]);
    const k15 = gaussianKernel(15);
    expect(k15.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    // σ = 0.3·(7 − 1) + 0.8 = 2.6: the centre weight of that Gaussian over 15 taps (cv2: 0.15401)
    expect(k15[7]).toBeCloseTo(0.154, 3);
  });

  it('reads boxes from lists or JSON text and refuses anything else with a message', () => {
    expect(parseBlurBoxes(null)).toEqual({ ok: true, boxes: undefined });
    expect(parseBlurBoxes('')).toEqual({ ok: true, boxes: undefined });
    expect(parseBlurBoxes([[0.1, 0.2, 0.3, 0.4]])).toEqual({ ok: true, boxes: [[0.1, 0.2, 0.3, 0.4]] });
    expect(parseBlurBoxes('[[0, 0, 1, 1], [0.5, 0.5, 0.6, 0.6]]')).toEqual({
      ok: true,
      boxes: [
        [0, 0, 1, 1],
        [0.5, 0.5, 0.6, 0.6],
      ],
    });
    expect(parseBlurBoxes([new Float64Array([0, 0, 0.5, 0.5])])).toEqual({ ok: true, boxes: [[0, 0, 0.5, 0.5]] });
    for (const bad of [
      '[[0, 0, 1]]',
      [0.1, 0.2, 0.3, 0.4],
      [[0, 0, 1, Number.NaN]],
      'faces',
      42,
      Array.from({ length: 1001 }, () => [0, 0, 1, 1]),
    ]) {
      const parsed = parseBlurBoxes(bad);
      expect(parsed.ok).toBe(false);
      expect((parsed as { message: string }).message).toMatch(/^Expected /);
    }
  });
});
