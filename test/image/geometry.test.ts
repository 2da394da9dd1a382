import { describe, expect, it } from 'vitest';
import { planResize, type ResizeMode } from '../../src/image/index.js';
import { pyRound } from '../../src/image/geometry.js';

// Offsets computed by hand from albumentations: center_crop x1 = (w - size) // 2; PadIfNeeded top = int((size - h) / 2),
// the odd pixel at the bottom/right.
describe('planResize', () => {
  const cases: [
    string,
    w: number,
    h: number,
    size: number,
    mode: ResizeMode,
    onlyIfBigger: boolean,
    expected: object,
  ][] = [
    [
      'border pads top/bottom, odd pixel at the bottom',
      640,
      480,
      100,
      'border',
      false,
      {
        resize: { width: 100, height: 75 },
        pad: { top: 12, bottom: 13, left: 0, right: 0 },
        width: 100,
        height: 100,
      },
    ],
    [
      'border pads left/right',
      300,
      800,
      64,
      'border',
      false,
      {
        resize: { width: 24, height: 64 },
        pad: { top: 0, bottom: 0, left: 20, right: 20 },
        width: 64,
        height: 64,
      },
    ],
    [
      'center_crop takes the middle, rounding the offset down',
      301,
      100,
      100,
      'center_crop',
      false,
      {
        crop: { left: 100, top: 0, width: 100, height: 100 },
        width: 100,
        height: 100,
      },
    ],
    [
      'center_crop after a resize',
      640,
      480,
      256,
      'center_crop',
      false,
      {
        resize: { width: 341, height: 256 },
        crop: { left: 42, top: 0, width: 256, height: 256 },
        width: 256,
        height: 256,
      },
    ],
    [
      'center_crop of a portrait',
      300,
      800,
      64,
      'center_crop',
      false,
      {
        resize: { width: 64, height: 171 },
        crop: { left: 0, top: 53, width: 64, height: 64 },
        width: 64,
        height: 64,
      },
    ],
    ['an identity resize is no resize', 256, 512, 256, 'keep_ratio', false, { width: 256, height: 512 }],
    ['a square at the size is neither cropped nor padded', 64, 64, 64, 'border', false, { width: 64, height: 64 }],
    ['no', 640, 480, 64, 'no', false, { width: 640, height: 480 }],
    // img2dataset skips the whole branch (resize AND crop/pad) when only_if_bigger and not bigger.
    [
      'only_if_bigger: shortest side == size is not bigger, so not cropped either',
      256,
      512,
      256,
      'center_crop',
      true,
      { width: 256, height: 512 },
    ],
    ['only_if_bigger: a small image is not padded', 200, 200, 256, 'border', true, { width: 200, height: 200 }],
    [
      'only_if_bigger: longest side bigger → downscale and pad',
      200,
      400,
      256,
      'border',
      true,
      {
        resize: { width: 128, height: 256 },
        pad: { top: 0, bottom: 0, left: 64, right: 64 },
        width: 256,
        height: 256,
      },
    ],
    [
      'a 1-pixel strip keeps at least 1 pixel (albumentations would give 0 and cv2 would fail)',
      1,
      1000,
      256,
      'keep_ratio_largest',
      false,
      {
        resize: { width: 1, height: 256 },
        width: 1,
        height: 256,
      },
    ],
  ];
  it.each(cases)('%s', (_name, w, h, size, mode, onlyIfBigger, expected) => {
    expect(planResize(w, h, size, mode, onlyIfBigger)).toEqual(expected);
  });
});

describe('pyRound', () => {
  it("rounds half to even, as Python 3's round", () => {
    expect([0.5, 1.5, 2.5, 3.5, 4.5, 341.5, 682.5].map(pyRound)).toEqual([0, 2, 2, 4, 4, 342, 682]);
    expect([0.49, 0.51, 341.333, 682.667, 7].map(pyRound)).toEqual([0, 1, 341, 683, 7]);
  });
});
