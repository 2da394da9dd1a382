import type { Semaphore } from '../core/async.js';
import type { FailureReason, ImageFormat, ImageOutcome, SampleRecord, SampleStatus, UrlRow } from '../core/types.js';
import type { Fetcher } from '../fetch/index.js';
import { exifJson, hashBytes, parseBlurBoxes, processImage, sniffImageFormat, type HashAlgorithm, type ImageOptions } from '../image/index.js';

export interface SampleContext {
  fetcher: Fetcher;
  image: ImageOptions;
  /**
   * Bounds the images being decoded at once. libuv's thread pool also serves file writes and DNS: hundreds of
   * queued resize jobs would starve the tar writer, which stalls the shard loop and idles the downloads.
   */
  imageSlots: Semaphore;
  computeHash: HashAlgorithm | 'none';
  /** Column holding the expected hash, when --verify-hash is set. */
  verifyHashCol: string | undefined;
  /** Whether a caption column was given: then every success gets a `.txt` (a null caption is ""). */
  hasCaption: boolean;
  /** The sample json's fields in order (columns.ts metaFields). */
  fields: string[];
  /** Fill the `exif` field from the original bytes. */
  extractExif: boolean;
  /** Column of boxes to blur (--bbox-col). */
  bboxCol: string | undefined;
  /** Keep the downloaded bytes as they are (--disable-all-reencoding). */
  disableAllReencoding: boolean;
}

/**
 * One input row → one record, success or failure. Never throws for anything the web or the image can do:
 * a failure is a record with `status`, `error_message` and a stable `reason` (img2dataset's contract).
 */
export async function downloadSample(row: UrlRow, key: string, ctx: SampleContext): Promise<SampleRecord> {
  const done = (o: Outcome) => record(key, row, ctx.fields, o);
  const fetched = await ctx.fetcher.fetch(row.url);
  if (!fetched.ok) return done({ status: 'failed_to_download', reason: fetched.reason, message: fetched.message });

  const hash = ctx.computeHash === 'none' ? undefined : hashBytes(fetched.bytes, ctx.computeHash);
  if (ctx.verifyHashCol !== undefined) {
    const expected = row.columns[ctx.verifyHashCol];
    if (typeof expected === 'string' && expected.length > 0 && expected.toLowerCase() !== hash) {
      return done({ status: 'failed_to_download', reason: 'hash_mismatch', message: 'hash mismatch' });
    }
  }

  const image = await encodedImage(fetched.bytes, row, ctx);
  if (!image.ok) {
    return done({ status: 'failed_to_resize', reason: image.reason, message: image.message, originalWidth: image.originalWidth, originalHeight: image.originalHeight });
  }
  const out = done({
    status: 'success',
    width: image.width,
    height: image.height,
    originalWidth: image.originalWidth,
    originalHeight: image.originalHeight,
    hash,
    exif: ctx.extractExif ? exifJson(fetched.bytes) : undefined,
  });
  out.image = { data: image.data, format: image.format };
  if (ctx.hasCaption) out.caption = row.caption ?? '';
  return out;
}

/** The image to store: the bytes as downloaded (--disable-all-reencoding, sizes unknown), or processed. */
type Encoded =
  | ImageOutcome
  | { ok: true; data: Buffer; format: ImageFormat; width?: undefined; height?: undefined; originalWidth?: undefined; originalHeight?: undefined };

async function encodedImage(bytes: Buffer, row: UrlRow, ctx: SampleContext): Promise<Encoded> {
  if (ctx.disableAllReencoding) {
    // img2dataset stores these bytes under the encode format's extension with no check at all; a look at the magic
    // bytes (no decode) keeps error pages out of the dataset.
    if (sniffImageFormat(bytes) === null) return { ok: false, reason: 'not_an_image', message: 'cannot identify image file: the body is not a known image format' };
    return { ok: true, data: bytes, format: ctx.image.encodeFormat };
  }
  const boxes = ctx.bboxCol === undefined ? undefined : parseBlurBoxes(row.columns[ctx.bboxCol]);
  if (boxes !== undefined && !boxes.ok) return { ok: false, reason: 'invalid_bbox', message: `${ctx.bboxCol}: ${boxes.message}` };
  return ctx.imageSlots.use(() => processImage(bytes, ctx.image, { blur: boxes?.boxes }));
}

interface Outcome {
  status: SampleStatus;
  reason?: FailureReason;
  message?: string;
  width?: number | undefined;
  height?: number | undefined;
  originalWidth?: number | undefined;
  originalHeight?: number | undefined;
  hash?: string | undefined;
  exif?: string | null | undefined;
}

/** The meta in `fields` order: input columns from the row, img2dataset's outcome fields, our reason. */
function record(key: string, row: UrlRow, fields: readonly string[], o: Outcome): SampleRecord {
  const known: Record<string, unknown> = {
    url: row.url,
    caption: row.caption,
    key,
    status: o.status,
    error_message: o.message,
    width: o.width,
    height: o.height,
    original_width: o.originalWidth,
    original_height: o.originalHeight,
    exif: o.exif,
    md5: o.hash,
    sha256: o.hash,
    sha512: o.hash,
    reason: o.reason,
  };
  const meta: Record<string, unknown> = {};
  for (const name of fields) meta[name] = (Object.hasOwn(known, name) ? known[name] : row.columns[name]) ?? null;
  return { key, status: o.status, meta };
}
