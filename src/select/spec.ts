import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { ClipstreamError, inputNotFound, invalidOption } from '../core/errors.js';
import { IMAGE_FORMATS } from '../core/types.js';
import { localPathOf, MAX_QUERY_DIM, parseOptions } from '../core/validation.js';
import { RESIZE_MODES } from '../image/geometry.js';
import { interpolationSchema } from '../image/interpolation.js';
import { MAX_SEARCH_RESULTS } from '../index/limits.js';

/** The spec file (docs/spec.md): what to stream. Parsed and validated here, once; inside, trusted. */

const QUERY_KINDS = ['text', 'image', 'embedding', 'embedding_file'] as const;

/**
 * Candidates one query may keep: count × oversample. Its long search asks the index for 1.25 × that + 16 rows,
 * which stays below what one search can return (MAX_SEARCH_RESULTS, 2^32 − 1) for every count up to this.
 */
export const MAX_QUERY_CANDIDATES = 2 ** 31;
/**
 * Queries one spec may hold: a plan keeps one open file per query while it is written (positions-*.bin) and its
 * long search tags rows with a 16-bit query number.
 */
export const MAX_QUERIES = 1000;
export type QueryKind = (typeof QUERY_KINDS)[number];

const byteSize = z.union([
  z.number().int().positive(),
  z
    .string()
    .regex(/^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$/i, 'Expected a size like 500MB or 20GB')
    .transform(parseByteSize),
]);

const querySchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'Expected a name of letters, digits, _ or - (1–64 characters)'),
    text: z.string().min(1).optional(),
    image: z.string().min(1).optional(),
    // any number here: NaN and infinities are refused where every query embedding is checked (one message)
    embedding: z
      .array(z.custom<number>((v) => typeof v === 'number', 'Expected a number'))
      .min(1)
      .max(MAX_QUERY_DIM)
      .optional(),
    embedding_file: z.string().min(1).optional(),
    count: z.number().int().min(1).max(MAX_QUERY_CANDIDATES),
    min_similarity: z.number().min(-1).max(1).default(-1),
    where: z.string().min(1).optional(),
    weight: z.number().positive().optional(),
  })
  .strict()
  .superRefine((q, ctx) => {
    const kinds = QUERY_KINDS.filter((k) => q[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message:
          kinds.length === 0
            ? `Expected exactly one of ${QUERY_KINDS.join(', ')}`
            : `Expected exactly one of ${QUERY_KINDS.join(', ')} but received ${kinds.join(' and ')}`,
      });
    }
  });

/** A remote clip back (`/knn-service`). A folder or URL string is an index folder: clipstream's or a faiss one. */
const remoteIndex = z.object({ url: z.string().url(), indice_name: z.string().min(1) }).strict();

/** A spec's `image:` block; also what a plan folder's header is read with (an older one lacks newer keys). */
export const imageSpecSchema = z
  .object({
    size: z.number().int().min(1).max(16384).default(256),
    resize_mode: z.enum(RESIZE_MODES).default('center_crop'),
    resize_only_if_bigger: z.boolean().default(false),
    upscale_interpolation: interpolationSchema.default('lanczos'),
    downscale_interpolation: interpolationSchema.default('area'),
    encode_format: z.enum(IMAGE_FORMATS).default('jpg'),
    encode_quality: z.number().int().min(0).max(100).default(95),
    min_image_size: z.number().int().min(0).default(0),
    max_image_area: z.number().positive().nullable().default(null),
    max_aspect_ratio: z.number().positive().nullable().default(null),
  })
  .strict();

export const specSchema = z
  .object({
    index: z.union([z.string().min(1), remoteIndex]),
    /** CLIP model folder that embeds text and image queries (the one that built the index). */
    model: z.string().min(1).optional(),
    queries: z
      .array(querySchema)
      .min(1)
      .max(
        MAX_QUERIES,
        `at most ${MAX_QUERIES} queries in one spec: split it, or merge queries that share a threshold`,
      ),
    dedup: z
      .object({
        ids: z.boolean().default(true),
        urls: z.boolean().default(true),
        near_duplicate: z.number().min(0).max(1).nullable().default(null),
      })
      .strict()
      .prefault({}),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .default(0),
    /** Candidate order within a query: a seeded shuffle (default) or best similarity first. */
    order: z.enum(['shuffle', 'similarity']).default('shuffle'),
    /** Candidates kept per requested sample, to back-fill dead links. */
    oversample: z.number().min(1).max(100).default(3),
    image: imageSpecSchema.prefault({}),
    fetch: z
      .object({
        concurrency: z.number().int().min(1).max(10_000).default(256),
        timeout: z.number().positive().max(3600).default(10),
        retries: z.number().int().min(0).max(20).default(2),
        per_host: z.number().int().min(1).max(10_000).default(16),
        allow_private_networks: z.boolean().default(false),
        max_bytes: byteSize.default(50 * 1024 * 1024),
        user_agent_token: z.string().min(1).optional(),
        disallowed_header_directives: z.array(z.string()).default(['noai', 'noimageai', 'noindex', 'noimageindex']),
      })
      .strict()
      .prefault({}),
    cache: z
      .object({ dir: z.string().min(1).nullable().default(null), max_bytes: byteSize.default(20 * 1024 ** 3) })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const seen = new Set<string>();
    spec.queries.forEach((q, i) => {
      if (seen.has(q.name))
        ctx.addIssue({
          code: 'custom',
          path: ['queries', i, 'name'],
          message: `Duplicate query name ${JSON.stringify(q.name)}`,
        });
      seen.add(q.name);
      const kept = Math.ceil(q.count * spec.oversample);
      if (kept > MAX_QUERY_CANDIDATES) {
        ctx.addIssue({
          code: 'custom',
          path: ['queries', i, 'count'],
          message:
            `${q.count} × oversample ${spec.oversample} = ${kept} candidates, over the ${MAX_QUERY_CANDIDATES} a query can keep ` +
            `(one index search returns at most ${MAX_SEARCH_RESULTS} rows); ask for fewer samples or lower oversample`,
        });
      }
    });
    if (spec.image.encode_format === 'png' && spec.image.encode_quality > 9) {
      ctx.addIssue({
        code: 'custom',
        path: ['image', 'encode_quality'],
        message: `Expected a compression level 0–9 for png but received ${spec.image.encode_quality}`,
      });
    }
  });

export type Spec = z.output<typeof specSchema>;
export type QuerySpec = Spec['queries'][number];

export function queryKind(q: QuerySpec): QueryKind {
  return QUERY_KINDS.find((k) => q[k] !== undefined)!;
}

/** Parses a spec object; `source` names it in errors. Relative paths are resolved against `baseDir`. */
export function parseSpec(input: unknown, source: string, baseDir: string): Spec {
  let spec: Spec;
  try {
    spec = parseOptions(specSchema, input, fieldName);
  } catch (err) {
    if (err instanceof ClipstreamError) {
      const message = err.message.replace(/^Unknown option/gm, 'Unknown field');
      throw invalidOption(`${source}: ${message.split('\n').join(`\n${source}: `)}`, {
        hint: 'docs/spec.md lists every field of a spec, its default and its allowed values.',
      });
    }
    throw err;
  }
  // Paths are relative to the spec's folder. A query's image and embedding file may also be http(s) URLs; any
  // other scheme is refused.
  const at = (p: string, field: string, urls = false) => {
    const local = localPathOf(p, `${field} in ${source}`, { urls });
    return isAbsolute(local) || /^https?:\/\//i.test(local) ? local : resolve(baseDir, local);
  };
  if (typeof spec.index === 'string') spec.index = at(spec.index, 'index', true);
  if (spec.model) spec.model = at(spec.model, 'model');
  if (spec.cache.dir) spec.cache.dir = at(spec.cache.dir, 'cache.dir');
  spec.queries.forEach((q, i) => {
    if (q.image) q.image = at(q.image, `queries[${i}].image`, true);
    if (q.embedding_file) q.embedding_file = at(q.embedding_file, `queries[${i}].embedding_file`, true);
  });
  return spec;
}

/** Reads a spec file: JSON, or YAML (a superset of JSON; its parser is loaded only for YAML: it costs ~30 ms). */
export async function readSpec(path: string): Promise<Spec> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw inputNotFound(`spec file not found: ${path}`, {
      hint: 'Pass the path of a YAML or JSON spec (see docs/streaming.md).',
    });
  }
  let input: unknown;
  try {
    input = asJson(text) ?? (await import('yaml')).parse(text, { maxAliasCount: 100, logLevel: 'error' });
  } catch (err) {
    throw invalidOption(`${path} is not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalidOption(`${path}: expected a mapping with index and queries at the top level`);
  }
  return parseSpec(input, path, dirname(resolve(path)));
}

/** The value of a JSON text; undefined for anything else (YAML then parses it, and words its errors). */
function asJson(text: string): unknown {
  if (!/^\s*[{[]/.test(text)) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** `queries.0.count` → `queries[0].count`, as a user reads it in the file. */
function fieldName(path: PropertyKey[]): string {
  return (
    path.reduce<string>(
      (out, part) => (typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${String(part)}` : String(part)),
      '',
    ) || 'the spec'
  );
}

export function parseByteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B)?\s*$/i.exec(text);
  if (!m) throw invalidOption(`Expected a size like 500MB or 20GB but received ${JSON.stringify(text)}`);
  const unit = (m[2] ?? 'B').toUpperCase();
  const power = { B: 0, K: 1, M: 2, G: 3, T: 4 }[unit[0] as 'B' | 'K' | 'M' | 'G' | 'T'] ?? 0;
  const base = unit.includes('I') ? 1024 : unit === 'B' ? 1 : 1000;
  return Math.round(Number(m[1]) * base ** power);
}
