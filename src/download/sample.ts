import type { FailureReason, SampleRecord, SampleStatus, UrlRow } from '../core/types.js';
import { parseBlurBoxes, type HashAlgorithm } from '../image/index.js';
import { fetchImage, type FetchImageContext } from '../sample/fetch-image.js';

export interface SampleContext extends FetchImageContext {
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
  if (row.error !== undefined) return done({ status: 'failed_to_download', reason: 'invalid_row', message: row.error });
  const boxes = ctx.bboxCol === undefined ? undefined : parseBlurBoxes(row.columns[ctx.bboxCol]);
  if (boxes !== undefined && !boxes.ok)
    return done({ status: 'failed_to_resize', reason: 'invalid_bbox', message: `${ctx.bboxCol}: ${boxes.message}` });
  const expected = ctx.verifyHashCol === undefined ? undefined : row.columns[ctx.verifyHashCol];
  const image = await fetchImage(row.url, ctx, {
    hash: ctx.computeHash === 'none' ? undefined : ctx.computeHash,
    expectedHash: typeof expected === 'string' && expected.length > 0 ? expected : undefined,
    exif: ctx.extractExif,
    blur: boxes?.boxes,
    keepBytes: ctx.disableAllReencoding,
  });
  if (!image.ok) return done({ ...image, message: image.message });
  const out = done({ ...image, status: 'success' });
  out.image = { data: image.data, format: image.format };
  if (ctx.hasCaption) out.caption = row.caption ?? '';
  return out;
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
