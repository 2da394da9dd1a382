import { invalidOption } from '../core/errors.js';
import { IMAGE_FORMATS, type ImageFormat } from '../core/types.js';
import { RESIZE_MODES, type ResizeMode } from './geometry.js';
import { INTERPOLATIONS, type Interpolation } from './interpolation.js';

/** What to do to every image: img2dataset's options (camelCased), for the download job and for streams alike. */
export interface ImageOptions {
  /** Target size in pixels (img2dataset's image_size). */
  imageSize: number;
  resizeMode: ResizeMode;
  /** Only downscale: an image not bigger than imageSize (per mode) is left as it is — not cropped, not padded. */
  resizeOnlyIfBigger: boolean;
  encodeFormat: ImageFormat;
  /** jpg/webp quality; for png the compression level 0–9 (img2dataset semantics). */
  encodeQuality: number;
  /** Filter when the image is made smaller (img2dataset's downscale_interpolation). */
  downscaleInterpolation: Interpolation;
  /** Filter when the image is made bigger (img2dataset's upscale_interpolation). */
  upscaleInterpolation: Interpolation;
  /** Keep the original bytes when the pixels would not change and the format already matches. */
  skipReencode: boolean;
  /** Shorter side of the original below this → too_small. */
  minImageSize: number;
  /** Original width × height above this → area_too_large. */
  maxImageArea: number;
  /** max(w, h) / min(w, h) of the original above this → aspect_ratio_too_large. */
  maxAspectRatio: number;
  /**
   * Pixel-bomb guard (MAX_INPUT_PIXELS unless a test says otherwise): an image whose header declares more pixels
   * is refused before any pixel is decoded. The planned output is held to the same limit (a 1×16000 strip upscaled
   * to a 256-pixel short side would otherwise be a 1-gigapixel output).
   */
  maxPixels: number;
}

/** Pixels an input image may declare: sharp's own default (0x3FFF × 0x3FFF), the one limit of every image path. */
export const MAX_INPUT_PIXELS = 268_402_689;

/** img2dataset's defaults (main.py), plus the pixel limit. */
export const defaultImageOptions: ImageOptions = {
  imageSize: 256,
  resizeMode: 'border',
  resizeOnlyIfBigger: false,
  downscaleInterpolation: 'area',
  upscaleInterpolation: 'lanczos',
  encodeFormat: 'jpg',
  encodeQuality: 95,
  skipReencode: false,
  minImageSize: 0,
  maxImageArea: Infinity,
  maxAspectRatio: Infinity,
  maxPixels: MAX_INPUT_PIXELS,
};

/** A spec's `image:` block (snake_case, img2dataset's names; `size` is image_size; null limits are none). */
export interface ImageSpec {
  size: number;
  resize_mode: ResizeMode;
  resize_only_if_bigger: boolean;
  upscale_interpolation: Interpolation;
  downscale_interpolation: Interpolation;
  encode_format: ImageFormat;
  encode_quality: number;
  min_image_size: number;
  max_image_area: number | null;
  max_aspect_ratio: number | null;
}

/** The one adapter from a spec's `image:` block (streams, plans) to ImageOptions; download options are ImageOptions' own names. */
export function imageOptionsOfSpec(image: ImageSpec): ImageOptions {
  return {
    ...defaultImageOptions,
    imageSize: image.size,
    resizeMode: image.resize_mode,
    resizeOnlyIfBigger: image.resize_only_if_bigger,
    downscaleInterpolation: image.downscale_interpolation,
    upscaleInterpolation: image.upscale_interpolation,
    encodeFormat: image.encode_format,
    encodeQuality: image.encode_quality,
    minImageSize: image.min_image_size,
    maxImageArea: image.max_image_area ?? Infinity,
    maxAspectRatio: image.max_aspect_ratio ?? Infinity,
  };
}

/** ImageOptions from any object holding img2dataset's camelCased options (the download's): every key picked by name. */
export function imageOptionsOf(o: Omit<ImageOptions, 'maxPixels'>): ImageOptions {
  const picked = Object.fromEntries(IMAGE_OPTION_KEYS.map((k) => [k, o[k]])) as Omit<ImageOptions, 'maxPixels'>;
  return { ...picked, maxPixels: MAX_INPUT_PIXELS };
}

const IMAGE_OPTION_KEYS = (Object.keys(defaultImageOptions) as (keyof ImageOptions)[]).filter(
  (k): k is Exclude<keyof ImageOptions, 'maxPixels'> => k !== 'maxPixels',
);

/**
 * Throws INVALID_OPTION ("Expected X for Y but received Z") for options sharp would refuse or that make no sense.
 * processImage calls it (a few comparisons); callers can call it once up front to fail before any download.
 */
export function validateImageOptions(o: ImageOptions): void {
  const expect = (ok: boolean, what: string, name: keyof ImageOptions) => {
    if (!ok) throw invalidOption(`Expected ${what} for ${name} but received ${String(o[name])}`);
  };
  expect(Number.isInteger(o.imageSize) && o.imageSize > 0, 'a positive integer', 'imageSize');
  expect(RESIZE_MODES.includes(o.resizeMode), `one of ${RESIZE_MODES.join(', ')}`, 'resizeMode');
  expect(IMAGE_FORMATS.includes(o.encodeFormat), `one of ${IMAGE_FORMATS.join(', ')}`, 'encodeFormat');
  expect(
    INTERPOLATIONS.includes(o.downscaleInterpolation),
    `one of ${INTERPOLATIONS.join(', ')}`,
    'downscaleInterpolation',
  );
  expect(
    INTERPOLATIONS.includes(o.upscaleInterpolation),
    `one of ${INTERPOLATIONS.join(', ')}`,
    'upscaleInterpolation',
  );
  if (o.encodeFormat === 'png') {
    expect(
      Number.isInteger(o.encodeQuality) && o.encodeQuality >= 0 && o.encodeQuality <= 9,
      'a compression level 0–9 (png)',
      'encodeQuality',
    );
  } else {
    expect(
      Number.isInteger(o.encodeQuality) && o.encodeQuality >= 0 && o.encodeQuality <= 100,
      'an integer 0–100',
      'encodeQuality',
    );
  }
  expect(o.minImageSize >= 0, 'a number ≥ 0', 'minImageSize');
  expect(o.maxImageArea > 0, 'a number > 0', 'maxImageArea');
  expect(o.maxAspectRatio >= 1, 'a number ≥ 1', 'maxAspectRatio');
  expect(o.maxPixels > 0, 'a number > 0', 'maxPixels');
}
