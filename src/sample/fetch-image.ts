import { availableParallelism } from 'node:os';
import { Semaphore } from '../core/async.js';
import type { FailureReason, ImageFormat } from '../core/types.js';
import type { Fetcher } from '../fetch/index.js';
import {
  exifJson,
  hashBytes,
  processImage,
  sniffImageFormat,
  type BlurBox,
  type HashAlgorithm,
  type ImageOptions,
} from '../image/index.js';

/** What the per-url pipeline needs; one per process, shared by every download or partition. */
export interface FetchImageContext {
  fetcher: Fetcher;
  image: ImageOptions;
  /**
   * Bounds the images being decoded at once. libuv's thread pool also serves file writes and DNS: hundreds of
   * queued resize jobs would starve the tar writer, which stalls the shard loop and idles the downloads.
   */
  imageSlots: Semaphore;
}

/** Images decoded at once per process: 4 per core keeps libvips busy without starving the libuv pool's file I/O. */
export function defaultImageSlots(): Semaphore {
  return new Semaphore(availableParallelism() * 4);
}

export interface FetchImageOptions {
  signal?: AbortSignal | undefined;
  /** Hash of the original bytes to report (img2dataset's compute_hash). */
  hash?: HashAlgorithm | undefined;
  /** Refuse (`hash_mismatch`) when the original bytes' hash is not this one (img2dataset's verify_hash). */
  expectedHash?: string | undefined;
  /** Report the original's EXIF as img2dataset's json string. */
  exif?: boolean | undefined;
  /** Regions to blur in the resized image (img2dataset's bbox_col). */
  blur?: readonly BlurBox[] | undefined;
  /** Keep the downloaded bytes as they are, after a look at their magic bytes (img2dataset's disable_all_reencoding). */
  keepBytes?: boolean | undefined;
}

/** An image ready for a sample; sizes are unknown when the bytes were kept as downloaded (`keepBytes`). */
export type FetchedImage =
  | {
      ok: true;
      data: Buffer;
      format: ImageFormat;
      width: number | undefined;
      height: number | undefined;
      originalWidth: number | undefined;
      originalHeight: number | undefined;
      hash: string | undefined;
      exif: string | null | undefined;
    }
  | {
      ok: false;
      /** img2dataset's statuses: the download failed, or the bytes could not be made into the image asked for. */
      status: 'failed_to_download' | 'failed_to_resize';
      reason: FailureReason;
      message: string;
      originalWidth?: number | undefined;
      originalHeight?: number | undefined;
    };

/**
 * The per-url pipeline of `download` and of streams: fetch → hash (→ verify) → image, the image work under the
 * image slots. Never throws for what the web or the bytes do: a failure is a value with img2dataset's status, a
 * stable reason and a message.
 */
export async function fetchImage(
  url: string,
  ctx: FetchImageContext,
  o: FetchImageOptions = {},
): Promise<FetchedImage> {
  const fetched = await ctx.fetcher.fetch(url, o.signal);
  if (!fetched.ok) return { ok: false, status: 'failed_to_download', reason: fetched.reason, message: fetched.message };
  const bytes = fetched.bytes;
  const hash = o.hash === undefined ? undefined : hashBytes(bytes, o.hash);
  if (o.expectedHash !== undefined && o.expectedHash.toLowerCase() !== hash) {
    return { ok: false, status: 'failed_to_download', reason: 'hash_mismatch', message: 'hash mismatch' };
  }
  const exif = () => (o.exif ? exifJson(bytes) : undefined);
  if (o.keepBytes) {
    // img2dataset stores these bytes under the encode format's extension with no check at all; a look at the magic
    // bytes (no decode) keeps error pages out of the dataset.
    if (sniffImageFormat(bytes) === null)
      return {
        ok: false,
        status: 'failed_to_resize',
        reason: 'not_an_image',
        message: 'cannot identify image file: the body is not a known image format',
      };
    const unknown = { width: undefined, height: undefined, originalWidth: undefined, originalHeight: undefined };
    return { ok: true, data: bytes, format: ctx.image.encodeFormat, ...unknown, hash, exif: exif() };
  }
  const image = await ctx.imageSlots.use(() => processImage(bytes, ctx.image, { blur: o.blur }));
  if (!image.ok) return { ...image, status: 'failed_to_resize' };
  return { ...image, hash, exif: exif() };
}
