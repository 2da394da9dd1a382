import { z } from 'zod';
import { IMAGE_FORMATS } from '../core/types.js';
import { interpolationSchema } from '../image/interpolation.js';
import { parseOptions } from '../core/validation.js';

/**
 * img2dataset's `download(**options)`, camelCased, with its defaults; plus ours (perHostConcurrency, maxBytes,
 * allowPrivateNetworks). The CLI maps kebab-case flags 1:1 onto these names. Parsed once, here; inside, trusted.
 */

const inputFormats = ['txt', 'txt.gz', 'csv', 'csv.gz', 'tsv', 'tsv.gz', 'json', 'json.gz', 'jsonl', 'jsonl.gz', 'parquet'] as const;
const outputFormats = ['files', 'webdataset', 'parquet', 'dummy'] as const;
const resizeModes = ['no', 'keep_ratio', 'keep_ratio_largest', 'center_crop', 'border'] as const;
const hashes = ['md5', 'sha256', 'sha512', 'none'] as const;
const incrementalModes = ['incremental', 'overwrite', 'extend'] as const;

/** Names img2dataset reserves for its own columns; an additional column may not use them. */
export const reservedColumns = [
  'key', 'caption', 'url', 'width', 'height', 'original_width', 'original_height',
  'status', 'error_message', 'reason', 'exif', 'md5', 'sha256', 'sha512',
] as const;

const positiveInt = z.number().int().min(1);
/** zod's number() refuses Infinity, img2dataset's default for the area and aspect limits. */
const unlimited = z.union([z.number().min(0), z.literal(Infinity)]).default(Infinity);

export const downloadOptionsSchema = z
  .object({
    urlList: z.string().min(1),
    outputFolder: z.string().min(1).default('images'),
    inputFormat: z.enum(inputFormats).default('txt'),
    urlCol: z.string().min(1).default('url'),
    captionCol: z.string().min(1).optional(),
    saveAdditionalColumns: z.array(z.string().min(1)).default([]),
    outputFormat: z.enum(outputFormats).default('files'),
    imageSize: positiveInt.default(256),
    resizeMode: z.enum(resizeModes).default('border'),
    resizeOnlyIfBigger: z.boolean().default(false),
    upscaleInterpolation: interpolationSchema.default('lanczos'),
    downscaleInterpolation: interpolationSchema.default('area'),
    encodeFormat: z.enum(IMAGE_FORMATS).default('jpg'),
    encodeQuality: z.number().int().min(0).max(100).default(95),
    skipReencode: z.boolean().default(false),
    minImageSize: z.number().int().min(0).default(0),
    maxImageArea: unlimited,
    maxAspectRatio: unlimited,
    numberSamplePerShard: positiveInt.default(10_000),
    oomShardCount: z.number().int().min(1).max(12).default(5),
    threadCount: positiveInt.max(10_000).default(256),
    processesCount: positiveInt.max(256).default(1),
    /** Seconds: the TOTAL deadline of one request (connect + headers + body), not a socket timeout. */
    timeout: z.number().positive().max(3600).default(10),
    retries: z.number().int().min(0).max(20).default(0),
    computeHash: z.enum(hashes).default('sha256'),
    /** `[column, hash type]`, as img2dataset. */
    verifyHash: z.tuple([z.string().min(1), z.enum(['md5', 'sha256', 'sha512'])]).optional(),
    incrementalMode: z.enum(incrementalModes).default('incremental'),
    userAgentToken: z.string().min(1).optional(),
    disallowedHeaderDirectives: z.array(z.string()).default(['noai', 'noimageai', 'noindex', 'noimageindex']),
    perHostConcurrency: positiveInt.max(10_000).default(16),
    maxBytes: positiveInt.default(50 * 1024 * 1024),
    allowPrivateNetworks: z.boolean().default(false),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.encodeFormat === 'png' && o.encodeQuality > 9) {
      ctx.addIssue({
        code: 'custom',
        path: ['encodeQuality'],
        message: `Expected a compression level 0–9 for png (img2dataset semantics) but received ${o.encodeQuality}`,
      });
    }
    for (const col of o.saveAdditionalColumns) {
      if ((reservedColumns as readonly string[]).includes(col)) {
        ctx.addIssue({
          code: 'custom',
          path: ['saveAdditionalColumns'],
          message: `Column "${col}" is reserved for clipstream's own output; rename it in the url list`,
        });
      }
    }
    if (o.verifyHash && o.verifyHash[1] !== o.computeHash) {
      ctx.addIssue({
        code: 'custom',
        path: ['verifyHash'],
        message: `Expected the verify-hash type to equal --compute-hash (${o.computeHash}) but received ${o.verifyHash[1]}`,
      });
    }
  });

export type DownloadOptionsInput = z.input<typeof downloadOptionsSchema>;
export type DownloadOptions = z.output<typeof downloadOptionsSchema>;

/** Flag name for an option path, for error messages: `encodeQuality` → `--encode-quality`. */
export function flagName(path: PropertyKey[]): string {
  const head = String(path[0] ?? '');
  return '--' + head.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

export function parseDownloadOptions(input: unknown): DownloadOptions {
  return parseOptions(downloadOptionsSchema, input, flagName);
}
