import type { Semaphore } from '../core/async.js';
import type { FailureReason, SampleRecord, SampleStatus, UrlRow } from '../core/types.js';
import type { Fetcher } from '../fetch/index.js';
import { hashBytes, processImage, type HashAlgorithm, type ImageOptions } from '../image/index.js';

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
  /** The additional columns to copy into the json / parquet, in order. */
  additionalColumns: string[];
}

/**
 * One input row → one record, success or failure. Never throws for anything the web or the image can do:
 * a failure is a record with `status`, `error_message` and a stable `reason` (img2dataset's contract).
 * `meta` keeps img2dataset's field order: input columns, key, status, error_message, (reason), sizes, hash.
 */
export async function downloadSample(row: UrlRow, key: string, ctx: SampleContext): Promise<SampleRecord> {
  const base = inputColumns(row, ctx);
  const fail = (status: SampleStatus, reason: FailureReason, message: string, sizes?: { ow?: number; oh?: number }) =>
    record(key, base, ctx, { status, reason, message, originalWidth: sizes?.ow, originalHeight: sizes?.oh });

  if (row.error !== undefined) return fail('failed_to_download', 'invalid_row', row.error);
  const fetched = await ctx.fetcher.fetch(row.url);
  if (!fetched.ok) return fail('failed_to_download', fetched.reason, fetched.message);

  const hash = ctx.computeHash === 'none' ? undefined : hashBytes(fetched.bytes, ctx.computeHash);
  if (ctx.verifyHashCol !== undefined) {
    const expected = row.columns[ctx.verifyHashCol];
    if (typeof expected === 'string' && expected.length > 0 && expected.toLowerCase() !== hash) {
      return fail('failed_to_download', 'hash_mismatch', 'hash mismatch');
    }
  }

  const image = await ctx.imageSlots.use(() => processImage(fetched.bytes, ctx.image));
  if (!image.ok) {
    return fail('failed_to_resize', image.reason, image.message, { ow: image.originalWidth, oh: image.originalHeight });
  }
  const out = record(key, base, ctx, {
    status: 'success',
    width: image.width,
    height: image.height,
    originalWidth: image.originalWidth,
    originalHeight: image.originalHeight,
    hash,
  });
  out.image = { data: image.data, format: image.format };
  if (ctx.hasCaption) out.caption = row.caption ?? '';
  return out;
}

function inputColumns(row: UrlRow, ctx: SampleContext): Record<string, unknown> {
  const meta: Record<string, unknown> = { url: row.url };
  if (ctx.hasCaption) meta.caption = row.caption;
  for (const col of ctx.additionalColumns) meta[col] = row.columns[col] ?? null;
  return meta;
}

interface Outcome {
  status: SampleStatus;
  reason?: FailureReason;
  message?: string;
  width?: number;
  height?: number;
  originalWidth?: number | undefined;
  originalHeight?: number | undefined;
  hash?: string | undefined;
}

function record(key: string, base: Record<string, unknown>, ctx: SampleContext, o: Outcome): SampleRecord {
  const meta: Record<string, unknown> = {
    ...base,
    key,
    status: o.status,
    error_message: o.message ?? null,
    reason: o.reason ?? null,
    width: o.width ?? null,
    height: o.height ?? null,
    original_width: o.originalWidth ?? null,
    original_height: o.originalHeight ?? null,
  };
  if (ctx.computeHash !== 'none') meta[ctx.computeHash] = o.hash ?? null;
  return { key, status: o.status, meta };
}
