import sharp, { type KernelEnum, type Metadata, type Sharp } from 'sharp';
import type { FailureReason, ImageFormat, ImageOutcome } from '../core/types.js';
import { encodeNpyHeader } from '../io/npy-header.js';
import { planResize } from './geometry.js';
import type { Interpolation } from './interpolation.js';
import { validateImageOptions, type ImageOptions } from './options.js';
import { JPEG_MAX_DIMENSION, readJpegHeader, type JpegHeader } from './jpeg-header.js';
import { blurBoxes, blursAnything, type BlurBox } from './blur.js';
import { withJfif } from './jfif.js';
import { sniffImageFormat, type SniffedFormat } from './sniff.js';

// Every image is seen once: libvips' operation cache (up to 50 MB and 100 operations by default) only holds memory
// in every process that resizes (download workers, stream, serve). Set when the image brick loads.
sharp.cache(false);

/**
 * cv2's filters in libvips. libvips widens every kernel but nearest by the shrink factor when shrinking, so all
 * downscales are anti-aliased (cv2's linear and cubic are not). cv2's area (a box over each output pixel's
 * footprint) has no libvips kernel: cubic gives the pixels closest to it (620×465 → 341×256, PSNR against
 * cv2.INTER_AREA: cubic 49.7 dB on photo-like images and 35.4 dB on hard-edged blocks; mitchell 47.9 / 34.2,
 * linear 47.5 / 32.9, lanczos3 46.6 / 31.8, nearest 34.7 / 21.0). cv2's lanczos4 (8 taps) becomes lanczos3.
 */
const KERNELS: Record<Interpolation, keyof KernelEnum> = {
  nearest: 'nearest',
  linear: 'linear',
  cubic: 'cubic',
  area: 'cubic',
  lanczos: 'lanczos3',
};

const WHITE = { r: 255, g: 255, b: 255 };
/** Largest side each encoder accepts: libjpeg's JPEG_MAX_DIMENSION, WebP's 14-bit sizes, PNG's 31-bit sizes. */
const MAX_SIDE: Record<ImageFormat, number> = {
  jpg: JPEG_MAX_DIMENSION,
  png: 0x7fff_ffff,
  webp: 16_383,
  npy: 0x7fff_ffff,
};

export interface ImageExtras {
  /** Regions to blur (img2dataset's bbox_col), relative to the resized image before its crop or padding. */
  blur?: readonly BlurBox[] | undefined;
}

/**
 * Decode → orient (EXIF) → flatten alpha on white → resize / crop / pad as img2dataset → encode, in one libvips
 * pipeline over one sharp instance (the header read for the checks is not a decode; for a JPEG it is our own
 * marker walk, which saves a libvips pass, with libvips' header read as the fallback).
 *
 * Orientation: unlike img2dataset (cv2 IMREAD_UNCHANGED ignores EXIF), the EXIF orientation is applied, so
 * originalWidth/originalHeight and width/height are the sizes a viewer shows: a 200×100 JPEG tagged 6 is
 * 100×200. The filters run on these oriented original sizes (min side, area and aspect ratio do not change with
 * a 90° turn).
 *
 * Formats: jpg, png, webp as img2dataset; npy is the pixels themselves (HWC uint8 RGB), `encode_quality` unused.
 *
 * Interpolation: img2dataset's options and defaults (area down, lanczos up), mapped onto libvips kernels (KERNELS);
 * JPEG shrink-on-load keeps big downscales cheap.
 *
 * Never throws for bad bytes: returns a failure with a stable reason. Rejects (INVALID_OPTION) only for bad options.
 */
export async function processImage(bytes: Buffer, o: ImageOptions, extras: ImageExtras = {}): Promise<ImageOutcome> {
  validateImageOptions(o);
  const opened = await openImage(bytes, o);
  if (!opened.ok) return opened.failure;
  const { jpeg, sniffed, meta, orientation, sizes } = opened;
  let { pipeline } = opened;
  const { originalWidth: ow, originalHeight: oh } = sizes;

  const plan = planResize(ow, oh, o.imageSize, o.resizeMode, o.resizeOnlyIfBigger);
  if (plan.width * plan.height > o.maxPixels) {
    return failure(
      'encode_error',
      `output of ${plan.width}x${plan.height} pixels would exceed the ${o.maxPixels} pixel limit`,
      sizes,
    );
  }
  if (Math.max(plan.width, plan.height) > MAX_SIDE[o.encodeFormat]) {
    return failure(
      'encode_error',
      `output of ${plan.width}x${plan.height} is too large for ${o.encodeFormat} (max side ${MAX_SIDE[o.encodeFormat]})`,
      sizes,
    );
  }

  // As img2dataset, alpha always forces a re-encode (it is flattened). Unlike img2dataset, an identity resize
  // (already at the target size) keeps the bytes too: the pixels would be the same, re-encoding only loses quality.
  // Boxes to blur force a re-encode (img2dataset would keep the unblurred bytes here).
  const blur = blursAnything(extras.blur, plan.resize?.width ?? ow, plan.resize?.height ?? oh)
    ? extras.blur
    : undefined;
  const samePixels = !plan.resize && !plan.crop && !plan.pad && orientation === 1 && !meta.hasAlpha && !blur;
  if (o.skipReencode && samePixels && sniffed === o.encodeFormat) {
    // Kept without a decode: bytes whose header only our walk has read get libvips' header check first.
    if (jpeg) {
      try {
        await pipeline.metadata();
      } catch (err) {
        return failure('decode_error', `Image decoding error: ${messageOf(err)}`, sizes);
      }
    }
    return { ok: true, data: bytes, format: o.encodeFormat, width: ow, height: oh, ...sizes };
  }

  if (orientation !== 1) pipeline = pipeline.rotate();
  if (meta.hasAlpha) pipeline = pipeline.flatten({ background: WHITE });
  if (plan.resize) {
    // img2dataset picks the filter by comparing the side it scales (min or max, per mode) to image_size: the
    // same as asking whether that side shrinks.
    const shrinks = plan.resize.width * plan.resize.height < ow * oh;
    const kernel = KERNELS[shrinks ? o.downscaleInterpolation : o.upscaleInterpolation];
    pipeline = pipeline.resize(plan.resize.width, plan.resize.height, { fit: 'fill', kernel });
  }
  try {
    // img2dataset blurs after the resize, before the crop or the padding
    if (blur) pipeline = await blurred(pipeline, blur);
    if (plan.crop) pipeline = pipeline.extract(plan.crop);
    if (plan.pad) pipeline = pipeline.extend({ ...plan.pad, background: WHITE });
    const { data, info } = await encode(pipeline, o.encodeFormat, o.encodeQuality).toBuffer({
      resolveWithObject: true,
    });
    return {
      ok: true,
      data: finish(data, info, o.encodeFormat),
      format: o.encodeFormat,
      width: info.width,
      height: info.height,
      ...sizes,
    };
  } catch (err) {
    return renderFailure(err, o, sizes);
  }
}

type Opened =
  | { ok: false; failure: ImageOutcome }
  | {
      ok: true;
      pipeline: Sharp;
      jpeg: JpegHeader | null;
      sniffed: SniffedFormat;
      meta: Pick<Metadata, 'width' | 'height' | 'orientation' | 'hasAlpha'>;
      orientation: number;
      sizes: { originalWidth: number; originalHeight: number };
    };

/** Identifies the bytes, reads the header (no decode) and applies the pixel limit and the size filters. */
async function openImage(bytes: Buffer, o: ImageOptions): Promise<Opened> {
  const refused = (...args: Parameters<typeof failure>): Opened => ({ ok: false, failure: failure(...args) });
  const sniffed = sniffImageFormat(bytes);
  if (sniffed === null)
    return refused('not_an_image', 'cannot identify image file: the body is not a known image format');

  // The header check below applies the pixel limit (width × height of the opened image) before any pixel is
  // decoded, and can report the declared size; libvips' own limit is off when libvips read that header, and on as
  // a second guard when our JPEG walk did (the size libvips reads is the one it decodes). failOn 'error' makes
  // truncated or broken data an error instead of a grey-filled image, while keeping libjpeg's warnings (trailing
  // garbage, slightly corrupt entropy data) that browsers and cv2 decode too.
  const jpeg = sniffed === 'jpg' ? readJpegHeader(bytes) : null;
  const pipeline = sharp(bytes, {
    limitInputPixels: jpeg ? o.maxPixels : false,
    failOn: 'error',
    sequentialRead: true,
  });
  let meta: Pick<Metadata, 'width' | 'height' | 'orientation' | 'hasAlpha'>;
  if (jpeg) {
    meta = { width: jpeg.width, height: jpeg.height, orientation: jpeg.orientation, hasAlpha: false };
  } else {
    try {
      meta = await pipeline.metadata();
    } catch (err) {
      return refused('decode_error', `Image decoding error: ${messageOf(err)}`);
    }
  }
  if (!meta.width || !meta.height) return refused('decode_error', 'Image decoding error: no dimensions');
  const orientation = meta.orientation ?? 1;
  const ow = orientation >= 5 ? meta.height : meta.width;
  const oh = orientation >= 5 ? meta.width : meta.height;
  const sizes = { originalWidth: ow, originalHeight: oh };
  if (ow * oh > o.maxPixels)
    return refused('too_many_pixels', `image has ${ow}x${oh} pixels, over the ${o.maxPixels} pixel limit`, sizes);
  if (Math.min(ow, oh) < o.minImageSize) return refused('too_small', 'image too small', sizes);
  if (ow * oh > o.maxImageArea) return refused('area_too_large', 'image area too large', sizes);
  if (Math.max(ow, oh) / Math.min(ow, oh) > o.maxAspectRatio)
    return refused('aspect_ratio_too_large', 'aspect ratio too large', sizes);
  return { ok: true, pipeline, jpeg, sniffed, meta, orientation, sizes };
}

/** The pipeline so far as 8-bit sRGB pixels, blurred in the boxes, as a new pipeline. */
async function blurred(pipeline: Sharp, boxes: readonly BlurBox[]): Promise<Sharp> {
  const { data, info } = await pipeline
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  const image = await blurBoxes({ data, width: info.width, height: info.height, channels: info.channels as 3 }, boxes);
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels } });
}

/** npy gets its header; a JPEG gets the JFIF segment cv2 (img2dataset) writes and libvips does not. */
function finish(data: Buffer, info: { width: number; height: number; channels: number }, format: ImageFormat): Buffer {
  if (format === 'npy') return withNpyHeader(data, info.height, info.width, info.channels);
  if (format === 'jpg') return withJfif(data);
  return data;
}

function renderFailure(
  err: unknown,
  o: ImageOptions,
  sizes: { originalWidth: number; originalHeight: number },
): ImageOutcome {
  const message = messageOf(err);
  // sharp checks the encoder's limits itself ("Processed image is too large for the WebP format"); every other
  // failure here comes from reading the pixels.
  if (/too large for the \w+ format/i.test(message))
    return failure('encode_error', `Image encoding error: ${message}`, sizes);
  // libvips' own pixel limit, the second guard when our JPEG walk read the header ("Input image exceeds pixel
  // limit"): it fires only if libvips decodes another frame size than the walk read
  if (/exceeds pixel limit/i.test(message))
    return failure('too_many_pixels', `image over the ${o.maxPixels} pixel limit (${message})`, sizes);
  return failure('decode_error', `Image decoding error: ${message}`, sizes);
}

function encode(pipeline: Sharp, format: ImageFormat, quality: number): Sharp {
  switch (format) {
    case 'jpg':
      // cv2 takes 0–100, sharp 1–100: 0 and 1 are the same "worst quality". Huffman tables as cv2 (libjpeg's
      // defaults) writes them: optimised tables would save ~5 % of the bytes of a 256 px image for ~1 ms of CPU,
      // a tenth of the image's whole decode + resize + encode (bench/README.md).
      return pipeline.jpeg({ quality: Math.max(1, quality), mozjpeg: false, optimiseCoding: false });
    case 'png':
      return pipeline.png({ compressionLevel: quality });
    case 'webp':
      return pipeline.webp({ quality: Math.max(1, quality) });
    case 'npy':
      // Three 8-bit channels whatever came in (grey, CMYK, 16-bit): the array numpy and torch users expect.
      return pipeline.toColourspace('srgb').raw({ depth: 'uchar' });
  }
}

/** Raw HWC uint8 pixels as a .npy file (what `np.save` writes for an `(h, w, 3)` uint8 array). */
function withNpyHeader(pixels: Buffer, height: number, width: number, channels: number): Buffer {
  const header = encodeNpyHeader([height, width, channels], 'uint8');
  return Buffer.concat([header, pixels], header.length + pixels.length);
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}

function failure(
  reason: FailureReason,
  message: string,
  sizes: { originalWidth?: number; originalHeight?: number } = {},
): ImageOutcome {
  return { ok: false, reason, message, ...sizes };
}
