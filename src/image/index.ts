import { createHash } from 'node:crypto';

export { processImage, type ImageExtras } from './process.js';
export {
  defaultImageOptions,
  imageOptionsOf,
  imageOptionsOfSpec,
  MAX_INPUT_PIXELS,
  validateImageOptions,
  type ImageOptions,
  type ImageSpec,
} from './options.js';
export { blurBoxes, parseBlurBoxes, type BlurBox } from './blur.js';
export { exifJson } from './exif.js';
export { planResize, type ResizeMode, type ResizePlan } from './geometry.js';
export { sniffImageFormat, type SniffedFormat } from './sniff.js';
export { readNpyImage, type NpyPixels } from './npy-image.js';

export type HashAlgorithm = 'md5' | 'sha256' | 'sha512';

/** Hex digest of the original downloaded bytes (img2dataset's compute_hash). */
export function hashBytes(bytes: Uint8Array, algorithm: HashAlgorithm): string {
  return createHash(algorithm).update(bytes).digest('hex');
}
