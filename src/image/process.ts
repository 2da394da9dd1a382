import sharp, { type Metadata, type Sharp } from 'sharp';
import type { FailureReason, ImageFormat, ImageOutcome } from '../core/types.js';
import { planResize, type ResizeMode } from './geometry.js';
import { sniffImageFormat } from './sniff.js';

export interface ImageOptions {
  imageSize: number;
  resizeMode: ResizeMode;
  resizeOnlyIfBigger: boolean;
  encodeFormat: ImageFormat;
  /** jpg/webp quality; for png the compression level 0–9 (img2dataset semantics). */
  encodeQuality: number;
  /** Keep the original bytes when nothing would change but the encoding and the format already matches. */
  skipReencode: boolean;
  /** Shorter side of the original below this → too_small. */
  minImageSize: number;
  maxImageArea: number;
  maxAspectRatio: number;
  /** Pixel-bomb guard: images with more pixels are refused from their header, before any decoding. */
  maxPixels: number;
}

export const defaultImageOptions: ImageOptions = {
  imageSize: 256,
  resizeMode: 'border',
  resizeOnlyIfBigger: false,
  encodeFormat: 'jpg',
  encodeQuality: 95,
  skipReencode: false,
  minImageSize: 0,
  maxImageArea: Infinity,
  maxAspectRatio: Infinity,
  maxPixels: 268_402_689,
};

const WHITE = { r: 255, g: 255, b: 255 };

/**
 * Decode → orient (EXIF) → flatten alpha on white → resize / crop / pad as img2dataset → encode, in one libvips
 * pipeline. Filters run on the original size (after EXIF orientation, so width/height mean what a viewer shows).
 * Never throws for bad bytes: returns a failure with a stable reason.
 */
export async function processImage(bytes: Buffer, o: ImageOptions): Promise<ImageOutcome> {
  const sniffed = sniffImageFormat(bytes);
  if (sniffed === null) return failure('not_an_image', 'cannot identify image file: the body is not a known image format');

  // One instance for the header and the pipeline. libvips' own pixel limit is off because the header check below
  // refuses oversized images before any pixel is decoded.
  let pipeline = sharp(bytes, { limitInputPixels: false, failOn: 'truncated', sequentialRead: true });
  let meta: Metadata;
  try {
    meta = await pipeline.metadata();
  } catch (err) {
    return failure('decode_error', `Image decoding error: ${(err as Error).message}`);
  }
  if (!meta.width || !meta.height) return failure('decode_error', 'Image decoding error: no dimensions');
  const rotated = (meta.orientation ?? 1) >= 5;
  const ow = rotated ? meta.height : meta.width;
  const oh = rotated ? meta.width : meta.height;
  const sizes = { originalWidth: ow, originalHeight: oh };
  if (ow * oh > o.maxPixels) return failure('too_many_pixels', `image has ${ow}x${oh} pixels, over the ${o.maxPixels} pixel limit`, sizes);
  if (Math.min(ow, oh) < o.minImageSize) return failure('too_small', 'image too small', sizes);
  if (ow * oh > o.maxImageArea) return failure('area_too_large', 'image area too large', sizes);
  if (Math.max(ow, oh) / Math.min(ow, oh) > o.maxAspectRatio) return failure('aspect_ratio_too_large', 'aspect ratio too large', sizes);

  const plan = planResize(ow, oh, o.imageSize, o.resizeMode, o.resizeOnlyIfBigger);
  const untouched = !plan.resize && !plan.crop && !plan.pad && (meta.orientation ?? 1) === 1;
  if (o.skipReencode && untouched && sniffed === o.encodeFormat) {
    return { ok: true, data: bytes, format: o.encodeFormat, width: ow, height: oh, ...sizes };
  }

  pipeline = pipeline.rotate();
  if (meta.hasAlpha) pipeline = pipeline.flatten({ background: WHITE });
  if (plan.resize) pipeline = pipeline.resize(plan.resize.width, plan.resize.height, { fit: 'fill' });
  if (plan.crop) pipeline = pipeline.extract(plan.crop);
  if (plan.pad) pipeline = pipeline.extend({ ...plan.pad, background: WHITE });
  pipeline = encode(pipeline, o.encodeFormat, o.encodeQuality);
  try {
    const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
    return { ok: true, data, format: o.encodeFormat, width: info.width, height: info.height, ...sizes };
  } catch (err) {
    return failure('decode_error', `Image decoding error: ${(err as Error).message}`, sizes);
  }
}

function encode(pipeline: Sharp, format: ImageFormat, quality: number): Sharp {
  switch (format) {
    case 'jpg':
      return pipeline.jpeg({ quality, mozjpeg: false });
    case 'png':
      return pipeline.png({ compressionLevel: quality });
    case 'webp':
      return pipeline.webp({ quality });
  }
}

function failure(
  reason: FailureReason,
  message: string,
  sizes: { originalWidth?: number; originalHeight?: number } = {},
): ImageOutcome {
  return { ok: false, reason, message, ...sizes };
}
