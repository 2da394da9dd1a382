import { z } from 'zod';
import { IMAGE_FORMATS } from '../core/types.js';
import { RESIZE_MODES } from '../image/geometry.js';
import { interpolationSchema } from '../image/interpolation.js';
import { INPUT_FORMATS } from '../io/url-list.js';
import { parseOptions } from '../core/validation.js';

/**
 * img2dataset's `download(**options)`, camelCased, with its defaults; plus ours (perHostConcurrency, maxBytes,
 * allowPrivateNetworks). The CLI maps kebab-case flags 1:1 onto these names. Parsed once, here; inside, trusted.
 */

/** The choices of img2dataset's enumerated options, for the schema below and the CLI's --help. */
export const OUTPUT_FORMATS = ['files', 'webdataset', 'parquet', 'dummy'] as const;
export const HASH_TYPES = ['md5', 'sha256', 'sha512', 'none'] as const;
export const INCREMENTAL_MODES = ['incremental', 'overwrite', 'extend'] as const;
const textFormats: readonly string[] = ['txt', 'txt.gz'];

/**
 * Where shards run. img2dataset's multiprocessing is our worker threads (--processes-count); `queue` is many
 * machines through a BullMQ queue on Redis (--queue, `clipstream worker`); img2dataset's pyspark and ray are not here.
 */
export const DISTRIBUTORS = ['multiprocessing', 'queue'] as const;
const OTHER_DISTRIBUTORS: Record<string, string> = {
  pyspark: 'pyspark is not available here',
  ray: 'ray is not available here',
};

/** Names img2dataset reserves for its own columns; an additional column may not use them. */
export const reservedColumns = [
  'key',
  'caption',
  'url',
  'width',
  'height',
  'original_width',
  'original_height',
  'status',
  'error_message',
  'reason',
  'exif',
  'md5',
  'sha256',
  'sha512',
] as const;

const positiveInt = z.number().int().min(1);
/** zod's number() refuses Infinity, img2dataset's default for the area and aspect limits. */
const unlimited = z.union([z.number().min(0), z.literal(Infinity)]).default(Infinity);

const baseShape = z
  .object({
    urlList: z.string().min(1),
    outputFolder: z.string().min(1).default('images'),
    inputFormat: z.enum(INPUT_FORMATS).default('txt'),
    urlCol: z.string().min(1).default('url'),
    captionCol: z.string().min(1).optional(),
    /** Column of face boxes `[[x_min, y_min, x_max, y_max], …]` in [0, 1] to blur (img2dataset's bbox_col). */
    bboxCol: z.string().min(1).optional(),
    saveAdditionalColumns: z.array(z.string().min(1)).default([]),
    outputFormat: z.enum(OUTPUT_FORMATS).default('files'),
    imageSize: positiveInt.default(256),
    resizeMode: z.enum(RESIZE_MODES).default('border'),
    resizeOnlyIfBigger: z.boolean().default(false),
    upscaleInterpolation: interpolationSchema.default('lanczos'),
    downscaleInterpolation: interpolationSchema.default('area'),
    encodeFormat: z.enum(IMAGE_FORMATS).default('jpg'),
    encodeQuality: z.number().int().min(0).max(100).default(95),
    skipReencode: z.boolean().default(false),
    /** Write the downloaded bytes as they are: no decode, resize, filter or blur (img2dataset: for benchmarks). */
    disableAllReencoding: z.boolean().default(false),
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
    computeHash: z.enum(HASH_TYPES).default('sha256'),
    /** The original image's EXIF tags as a JSON string in the `exif` field (exifread's names, as img2dataset). */
    extractExif: z.boolean().default(true),
    /** `[column, hash type]`, as img2dataset. */
    verifyHash: z.tuple([z.string().min(1), z.enum(['md5', 'sha256', 'sha512'])]).optional(),
    incrementalMode: z.enum(INCREMENTAL_MODES).default('incremental'),
    /** How many more times shards that failed are run at the end of the job (img2dataset's retrier). */
    maxShardRetry: z.number().int().min(0).max(100).default(1),
    distributor: z.string().default('multiprocessing'),
    /** With --distributor queue: the Redis of the job queue, redis://HOST:PORT/DB. */
    queue: z.string().min(1).optional(),
    /** img2dataset: shards per pyspark batch. Accepted; no effect here (no pyspark). */
    subjobSize: positiveInt.default(1000),
    /** Accepted; clipstream does not log to Weights & Biases (see downloadNotices). */
    enableWandb: z.boolean().default(false),
    wandbProject: z.string().min(1).default('img2dataset'),
    userAgentToken: z.string().min(1).optional(),
    disallowedHeaderDirectives: z.array(z.string()).default(['noai', 'noimageai', 'noindex', 'noimageindex']),
    perHostConcurrency: positiveInt.max(10_000).default(16),
    maxBytes: positiveInt.default(50 * 1024 * 1024),
    allowPrivateNetworks: z.boolean().default(false),
  })
  .strict();

export const downloadOptionsSchema = baseShape.superRefine((o, ctx) => {
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
  checkCombinations(o, ctx);
  if (o.verifyHash && o.verifyHash[1] !== o.computeHash) {
    ctx.addIssue({
      code: 'custom',
      path: ['verifyHash'],
      message: `Expected the verify-hash type to equal --compute-hash (${o.computeHash}) but received ${o.verifyHash[1]}`,
    });
  }
});

type Issues = z.core.$RefinementCtx;
type Parsed = z.output<typeof baseShape>;

function checkCombinations(o: Parsed, ctx: Issues): void {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (!(DISTRIBUTORS as readonly string[]).includes(o.distributor)) {
    const why =
      OTHER_DISTRIBUTORS[o.distributor] ??
      `Expected one of ${DISTRIBUTORS.join(', ')} but received ${JSON.stringify(o.distributor)}`;
    issue(
      'distributor',
      `${why}: clipstream runs shards on --processes-count worker threads of one machine (--distributor multiprocessing) or on many machines (--distributor queue --queue redis://HOST:PORT/DB)`,
    );
  }
  if (o.distributor === 'queue' && o.queue === undefined) {
    issue(
      'queue',
      'is required with --distributor queue: the Redis every machine reaches, e.g. redis://10.0.0.5:6379/0',
    );
  }
  if (o.queue !== undefined && o.distributor !== 'queue') {
    issue('queue', `goes with --distributor queue (received --distributor ${o.distributor}); add --distributor queue`);
  }
  if (o.bboxCol !== undefined && textFormats.includes(o.inputFormat)) {
    issue(
      'bboxCol',
      `a ${o.inputFormat} url list has only a url column; give the boxes in a csv, tsv, json, jsonl or parquet list`,
    );
  }
  if (o.bboxCol !== undefined && (reservedColumns as readonly string[]).includes(o.bboxCol)) {
    issue('bboxCol', `Column "${o.bboxCol}" is reserved for clipstream's own output; rename it in the url list`);
  }
  if (o.disableAllReencoding && o.bboxCol !== undefined) {
    issue(
      'disableAllReencoding',
      'writes the downloaded bytes untouched, so --bbox-col could not blur anything; drop one of the two',
    );
  }
  if (o.disableAllReencoding && o.encodeFormat === 'npy') {
    issue(
      'disableAllReencoding',
      'keeps the downloaded bytes, and --encode-format npy needs decoded pixels; drop one of the two',
    );
  }
}

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

/** What the job tells the user once at start about accepted options that do nothing here. */
export function downloadNotices(o: DownloadOptions): string[] {
  const notices: string[] = [];
  if (o.enableWandb) {
    notices.push(
      `--enable-wandb is ignored (project "${o.wandbProject}"): clipstream does not log to Weights & Biases; ` +
        'progress is printed here, and every shard writes its counts to {shard}_stats.json',
    );
  }
  return notices;
}
