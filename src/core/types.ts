/** Shared shapes between bricks. Data flows one way: io → fetch → image → sink. */

/** Stable failure codes carried by every failed sample: users and stats files branch on them, so they never change. */
export type FailureReason =
  | `http_${number}`
  | 'timeout'
  | 'too_large'
  | 'connection_error'
  | 'dns_error'
  | 'tls_error'
  | 'too_many_redirects'
  | 'invalid_url'
  | 'invalid_row'
  | 'opted_out'
  | 'private_address'
  | 'rate_limited'
  | 'aborted'
  | 'not_an_image'
  | 'decode_error'
  | 'too_small'
  | 'too_many_pixels'
  | 'area_too_large'
  | 'aspect_ratio_too_large'
  | 'hash_mismatch'
  | 'invalid_bbox'
  | 'encode_error';

/** One row of an input url list. `index` is its position over all input files (0-based). */
export interface UrlRow {
  index: number;
  url: string;
  caption: string | null;
  /** The columns asked for with save-additional-columns, plus the verify-hash column when set. */
  columns: Record<string, unknown>;
  /**
   * Why the row cannot be used although the file reads (a value nested too deep): it is recorded as failed
   * (`invalid_row`) without a download, and its unusable cells are null.
   */
  error?: string;
}

export type FetchOutcome =
  | {
      ok: true;
      bytes: Buffer;
      /** Final URL after redirects. */
      url: string;
      status: number;
      contentType: string | null;
      attempts: number;
    }
  | {
      ok: false;
      reason: FailureReason;
      message: string;
      status?: number;
      attempts: number;
    };

/**
 * Output image formats: img2dataset's three, and `npy`: the resized pixels as a numpy array (HWC uint8 RGB), for a
 * trainer on the same machine, which then decodes nothing (and the server encodes nothing); 6–7 × the bytes of a jpg.
 */
export const IMAGE_FORMATS = ['jpg', 'png', 'webp', 'npy'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

export type ImageOutcome =
  | {
      ok: true;
      data: Buffer;
      format: ImageFormat;
      width: number;
      height: number;
      originalWidth: number;
      originalHeight: number;
    }
  | {
      ok: false;
      reason: FailureReason;
      message: string;
      originalWidth?: number;
      originalHeight?: number;
    };

export type SampleStatus = 'success' | 'failed_to_download' | 'failed_to_resize';

/**
 * What a sink receives for every input row, successes and failures alike.
 * `meta` is the sample json / parquet row, in img2dataset's field order.
 */
export interface SampleRecord {
  key: string;
  status: SampleStatus;
  meta: Record<string, unknown>;
  /** Present only on success. */
  image?: { data: Buffer; format: ImageFormat };
  /** Present when a caption column was given (null caption → ""). */
  caption?: string;
  /** More members after the json, e.g. a streamed sample's resume `state`. */
  extra?: { ext: string; data: Buffer }[];
}
