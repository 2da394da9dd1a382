import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { ResizeMode } from '../../src/image/index.js';
import { bands, expectColour, ok, pixels, run, solid, type Rgb } from './fixtures.js';

type Row = [w: number, h: number, size: number, mode: ResizeMode, onlyIfBigger: boolean, out: [number, number]];

// Expected sizes computed by hand from img2dataset's resizer.py + albumentations:
//   keep_ratio / center_crop: scale = size / min(w, h); keep_ratio_largest / border: scale = size / max(w, h);
//   new side = round(side * scale) with Python's round-half-to-even; then crop / pad to size × size.
//   only_if_bigger: the whole step (resize + crop/pad) is skipped unless min (keep_ratio, center_crop) or
//   max (keep_ratio_largest, border) side > size.
const table: Row[] = [
  // landscape 640×480 — 256: 480→256 gives 640·0.5333 = 341.33; 640→256 gives 480·0.4 = 192
  [640, 480, 256, 'keep_ratio', false, [341, 256]],
  [640, 480, 256, 'keep_ratio_largest', false, [256, 192]],
  [640, 480, 256, 'center_crop', false, [256, 256]],
  [640, 480, 256, 'border', false, [256, 256]],
  [640, 480, 256, 'no', false, [640, 480]],
  // 64: 640·0.1333 = 85.33; 480·0.1 = 48
  [640, 480, 64, 'keep_ratio', false, [85, 64]],
  [640, 480, 64, 'keep_ratio_largest', false, [64, 48]],
  [640, 480, 64, 'center_crop', false, [64, 64]],
  [640, 480, 64, 'border', false, [64, 64]],
  [640, 480, 64, 'no', false, [640, 480]],
  // portrait 300×800 — 256: 800·0.8533 = 682.67; 300·0.32 = 96
  [300, 800, 256, 'keep_ratio', false, [256, 683]],
  [300, 800, 256, 'keep_ratio_largest', false, [96, 256]],
  [300, 800, 256, 'center_crop', false, [256, 256]],
  [300, 800, 256, 'border', false, [256, 256]],
  [300, 800, 256, 'no', false, [300, 800]],
  // 64: 800·0.2133 = 170.67; 300·0.08 = 24
  [300, 800, 64, 'keep_ratio', false, [64, 171]],
  [300, 800, 64, 'keep_ratio_largest', false, [24, 64]],
  [300, 800, 64, 'center_crop', false, [64, 64]],
  [300, 800, 64, 'border', false, [64, 64]],
  [300, 800, 64, 'no', false, [300, 800]],
  // square 200×200: up to 256, down to 64
  [200, 200, 256, 'keep_ratio', false, [256, 256]],
  [200, 200, 256, 'keep_ratio_largest', false, [256, 256]],
  [200, 200, 256, 'center_crop', false, [256, 256]],
  [200, 200, 256, 'border', false, [256, 256]],
  [200, 200, 256, 'no', false, [200, 200]],
  [200, 200, 64, 'keep_ratio', false, [64, 64]],
  [200, 200, 64, 'keep_ratio_largest', false, [64, 64]],
  [200, 200, 64, 'center_crop', false, [64, 64]],
  [200, 200, 64, 'border', false, [64, 64]],
  [200, 200, 64, 'no', false, [200, 200]],
  // tiny 10×20 (upscaled) — 256: ×25.6 / ×12.8; 64: ×6.4 / ×3.2
  [10, 20, 256, 'keep_ratio', false, [256, 512]],
  [10, 20, 256, 'keep_ratio_largest', false, [128, 256]],
  [10, 20, 256, 'center_crop', false, [256, 256]],
  [10, 20, 256, 'border', false, [256, 256]],
  [10, 20, 256, 'no', false, [10, 20]],
  [10, 20, 64, 'keep_ratio', false, [64, 128]],
  [10, 20, 64, 'keep_ratio_largest', false, [32, 64]],
  [10, 20, 64, 'center_crop', false, [64, 64]],
  [10, 20, 64, 'border', false, [64, 64]],
  [10, 20, 64, 'no', false, [10, 20]],
  // resize_only_if_bigger: small inputs stay as they are (no crop, no pad)
  [10, 20, 256, 'keep_ratio', true, [10, 20]],
  [10, 20, 256, 'keep_ratio_largest', true, [10, 20]],
  [10, 20, 256, 'center_crop', true, [10, 20]],
  [10, 20, 256, 'border', true, [10, 20]],
  [10, 20, 64, 'center_crop', true, [10, 20]],
  [10, 20, 64, 'border', true, [10, 20]],
  [200, 200, 256, 'center_crop', true, [200, 200]],
  [200, 200, 256, 'border', true, [200, 200]],
  // … big inputs are downscaled as usual
  [640, 480, 256, 'keep_ratio', true, [341, 256]],
  [640, 480, 256, 'keep_ratio_largest', true, [256, 192]],
  [640, 480, 256, 'center_crop', true, [256, 256]],
  [640, 480, 256, 'border', true, [256, 256]],
  [200, 200, 64, 'center_crop', true, [64, 64]],
  // … and "bigger" is per mode: min side 200 ≤ 256 but max side 400 > 256
  [200, 400, 256, 'keep_ratio', true, [200, 400]],
  [200, 400, 256, 'center_crop', true, [200, 400]],
  [200, 400, 256, 'keep_ratio_largest', true, [128, 256]],
  [200, 400, 256, 'border', true, [256, 256]],
  // a side equal to the size is not bigger
  [256, 512, 256, 'center_crop', true, [256, 512]],
  [256, 512, 256, 'center_crop', false, [256, 256]],
  // Python rounding: 3·1.5 = 4.5 → 4 and 5·1.5 = 7.5 → 8 (half to even; Math.round would give 5 and 8)
  [3, 2, 3, 'keep_ratio', false, [4, 3]],
  [5, 2, 3, 'keep_ratio', false, [8, 3]],
];

const inputs = new Map<string, Promise<Buffer>>();
const input = (w: number, h: number) => {
  const key = `${w}x${h}`;
  if (!inputs.has(key)) inputs.set(key, solid(w, h, 'png'));
  return inputs.get(key)!;
};

describe('output sizes match img2dataset exactly', () => {
  it.each(table)(
    '%ix%i to %i with %s (only if bigger: %s) gives %j',
    async (w, h, size, resizeMode, resizeOnlyIfBigger, [ew, eh]) => {
      const out = ok(await run(await input(w, h), { imageSize: size, resizeMode, resizeOnlyIfBigger }));
      expect([out.width, out.height]).toEqual([ew, eh]);
      expect([out.originalWidth, out.originalHeight]).toEqual([w, h]);
      const meta = await sharp(out.data).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', ew, eh]);
    },
  );
});

const RED: Rgb = [255, 0, 0];
const GREEN: Rgb = [0, 255, 0];
const BLUE: Rgb = [0, 0, 255];
const WHITE: Rgb = [255, 255, 255];

describe('pixels', () => {
  it('border pads with white above and below, the odd row at the bottom (640x480 → 100: 100x75 + 12 + 13)', async () => {
    const out = ok(
      await run(await solid(640, 480, 'png', '#0000ff'), {
        imageSize: 100,
        resizeMode: 'border',
        encodeFormat: 'png',
        encodeQuality: 1,
      }),
    );
    const px = await pixels(out.data);
    expect([px.width, px.height]).toEqual([100, 100]);
    for (const x of [0, 50, 99]) {
      for (const y of [0, 11, 87, 99]) expect(px.at(x, y)).toEqual(WHITE);
      for (const y of [12, 50, 86]) expectColour(px.at(x, y), BLUE);
    }
  });

  it('border pads with white left and right (300x800 → 64: 24x64 + 20 + 20)', async () => {
    const out = ok(
      await run(await solid(300, 800, 'png', '#00ff00'), {
        imageSize: 64,
        resizeMode: 'border',
        encodeFormat: 'png',
        encodeQuality: 1,
      }),
    );
    const px = await pixels(out.data);
    for (const x of [0, 19, 44, 63]) expect(px.at(x, 32)).toEqual(WHITE);
    for (const x of [20, 32, 43]) expectColour(px.at(x, 32), GREEN);
  });

  it('border pads a JPEG with white too', async () => {
    const out = ok(await run(await solid(640, 480, 'jpeg', '#000000'), { imageSize: 256, resizeMode: 'border' }));
    const px = await pixels(out.data);
    expectColour(px.at(128, 2), WHITE, 1);
    expectColour(px.at(128, 253), WHITE, 1);
    expectColour(px.at(128, 128), [0, 0, 0]);
  });

  it('center_crop keeps the middle, offset rounded down: columns 100..199 of 301', async () => {
    const src = await bands(301, 100, [
      [100, RED],
      [200, GREEN],
      [301, BLUE],
    ])
      .png()
      .toBuffer();
    const out = ok(
      await run(src, { imageSize: 100, resizeMode: 'center_crop', encodeFormat: 'png', encodeQuality: 1 }),
    );
    const px = await pixels(out.data);
    expect([px.width, px.height]).toEqual([100, 100]);
    for (const x of [0, 50, 99]) expect(px.at(x, 50)).toEqual(GREEN);
  });

  it('center_crop after a downscale keeps the centre', async () => {
    // 600x200 → keep_ratio 192x64 → crop x 64..127: the middle third only
    const src = await bands(600, 200, [
      [200, RED],
      [400, GREEN],
      [600, BLUE],
    ])
      .png()
      .toBuffer();
    const out = ok(await run(src, { imageSize: 64, resizeMode: 'center_crop', encodeFormat: 'png', encodeQuality: 1 }));
    const px = await pixels(out.data);
    for (const x of [2, 32, 61]) expectColour(px.at(x, 32), GREEN);
  });

  it('flattens a fully transparent PNG on white', async () => {
    const transparent = await sharp({
      create: { width: 40, height: 30, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    for (const resizeMode of ['no', 'border', 'center_crop'] as const) {
      const out = ok(await run(transparent, { resizeMode, imageSize: 64 }));
      const px = await pixels(out.data);
      for (const [x, y] of [
        [0, 0],
        [20, 15],
        [px.width - 1, px.height - 1],
      ] as const)
        expect(px.at(x, y)).toEqual(WHITE);
    }
  });

  it('composites half-transparent pixels on white as img2dataset (alpha/255·c + 255 − alpha) and drops the alpha channel', async () => {
    const half = await sharp({
      create: { width: 8, height: 8, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 128 / 255 } },
    })
      .png()
      .toBuffer();
    const out = ok(await run(half, { resizeMode: 'no', encodeFormat: 'png', encodeQuality: 1 }));
    const meta = await sharp(out.data).metadata();
    expect([meta.channels, meta.hasAlpha]).toEqual([3, false]);
    expectColour((await pixels(out.data)).at(4, 4), [255, 127, 127], 1);
  });

  it('applies EXIF orientation: a 200x100 JPEG tagged 6 is the 100x200 image a viewer shows', async () => {
    // stored: left half red, right half blue; orientation 6 = rotate 90° clockwise to display → red on top
    const tagged = await bands(200, 100, [
      [100, RED],
      [200, BLUE],
    ])
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    expect((await sharp(tagged).metadata()).orientation).toBe(6);
    const out = ok(await run(tagged, { resizeMode: 'no' }));
    expect([out.originalWidth, out.originalHeight, out.width, out.height]).toEqual([100, 200, 100, 200]);
    const px = await pixels(out.data);
    expect([px.width, px.height]).toEqual([100, 200]);
    expectColour(px.at(50, 40), RED, 8);
    expectColour(px.at(50, 160), BLUE, 8);
    expect((await sharp(out.data).metadata()).orientation).toBeUndefined();

    const resized = ok(await run(tagged, { imageSize: 50, resizeMode: 'keep_ratio_largest' }));
    expect([resized.originalWidth, resized.originalHeight, resized.width, resized.height]).toEqual([100, 200, 25, 50]);
    const small = ok(await run(tagged, { imageSize: 50, resizeMode: 'keep_ratio' }));
    expect([small.width, small.height]).toEqual([50, 100]);
  });

  it('converts CMYK JPEGs to sRGB and keeps greyscale working', async () => {
    const cmyk = await sharp({ create: { width: 20, height: 20, channels: 3, background: '#ff0000' } })
      .toColourspace('cmyk')
      .jpeg()
      .toBuffer();
    const out = ok(await run(cmyk, { imageSize: 16, resizeMode: 'center_crop' }));
    expect((await sharp(out.data).metadata()).space).toBe('srgb');
    const grey = await sharp({ create: { width: 30, height: 20, channels: 3, background: '#808080' } })
      .greyscale()
      .jpeg()
      .toBuffer();
    const g = ok(await run(grey, { imageSize: 16, resizeMode: 'border' }));
    expect([g.width, g.height]).toEqual([16, 16]);
    expectColour((await pixels(g.data)).at(8, 0), WHITE, 1);
  });
});

describe("img2dataset's interpolation options", () => {
  // 8×8 cells of two colours: a filter that mixes neighbours makes colours that are in neither cell.
  const checker = (cells: number, cell: number) => {
    const side = cells * cell;
    const data = Buffer.alloc(side * side * 3);
    for (let y = 0; y < side; y++)
      for (let x = 0; x < side; x++)
        data.set(((x / cell) ^ (y / cell)) & 1 ? [255, 0, 0] : [0, 0, 255], (y * side + x) * 3);
    return sharp(data, { raw: { width: side, height: side, channels: 3 } })
      .png()
      .toBuffer();
  };
  const mixedPixels = async (png: Buffer) => {
    const { data } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    let mixed = 0;
    for (let i = 0; i < data.length; i += 3)
      if (!((data[i] === 255 && data[i + 2] === 0) || (data[i] === 0 && data[i + 2] === 255))) mixed++;
    return mixed;
  };
  const at = (o: Parameters<typeof run>[1]) => ({
    imageSize: 64,
    resizeMode: 'keep_ratio' as const,
    encodeFormat: 'png' as const,
    encodeQuality: 0,
    ...o,
  });

  it('upscale_interpolation applies when enlarging, downscale_interpolation when shrinking', async () => {
    const small = await checker(4, 4); // 16×16 → 64×64
    const big = await checker(16, 16); // 256×256 → 64×64
    const up = (upscaleInterpolation: 'nearest' | 'lanczos', downscaleInterpolation: 'nearest' | 'area') =>
      run(small, at({ upscaleInterpolation, downscaleInterpolation }));
    const down = (upscaleInterpolation: 'nearest' | 'lanczos', downscaleInterpolation: 'nearest' | 'area') =>
      run(big, at({ upscaleInterpolation, downscaleInterpolation }));
    expect(await mixedPixels(ok(await up('nearest', 'area')).data)).toBe(0);
    expect(await mixedPixels(ok(await up('lanczos', 'nearest')).data)).toBeGreaterThan(100);
    expect(await mixedPixels(ok(await down('lanczos', 'nearest')).data)).toBe(0);
    expect(await mixedPixels(ok(await down('nearest', 'area')).data)).toBeGreaterThan(100);
  });

  it('the default (area) gives the pixels of a plain box average, within a few levels', async () => {
    // 2× down: cv2's INTER_AREA is then exactly the mean of each 2×2 block
    const data = Buffer.alloc(128 * 128 * 3);
    for (let i = 0; i < data.length; i++) data[i] = (Math.imul(i >> 4, 2654435761) >>> 24) & 255;
    const src = await sharp(data, { raw: { width: 128, height: 128, channels: 3 } })
      .blur(2)
      .png()
      .toBuffer();
    const { data: pix } = await sharp(src).raw().toBuffer({ resolveWithObject: true });
    const worstAgainstBox = async (options: Parameters<typeof at>[0]) => {
      const out = await pixels(ok(await run(src, at(options))).data);
      let worst = 0;
      for (let y = 0; y < 64; y++) {
        for (let x = 0; x < 64; x++) {
          const box = [0, 1, 2].map(
            (c) =>
              [0, 1]
                .flatMap((dy) => [0, 1].map((dx) => pix[((2 * y + dy) * 128 + 2 * x + dx) * 3 + c]!))
                .reduce((a, b) => a + b, 0) / 4,
          );
          out.at(x, y).forEach((v, c) => (worst = Math.max(worst, Math.abs(v - box[c]!))));
        }
      }
      return worst;
    };
    const worst = await worstAgainstBox({}); // the default: area
    expect(worst).toBeLessThanOrEqual(4); // linear: 7.75, nearest: 20
    // and closer than the other anti-aliased kernels (cubic 2 here, lanczos3 3)
    expect(worst).toBeLessThan(await worstAgainstBox({ downscaleInterpolation: 'lanczos' }));
  });
});
