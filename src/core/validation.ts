import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { invalidOption, queryInvalid } from './errors.js';

/**
 * Parses untrusted options at an edge (CLI flags, spec files, HTTP bodies) and turns zod's issues into one
 * ClipstreamError whose message names every offending field the way the user wrote it.
 */
export function parseOptions<S extends z.ZodType>(
  schema: S,
  input: unknown,
  nameOf: (path: PropertyKey[]) => string = (path) => path.join('.'),
  hint = 'Run the command with --help to see every option and its allowed values.',
): z.output<S> {
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => describeIssue(issue, nameOf));
  throw invalidOption(lines.join('\n'), { hint });
}

function describeIssue(issue: z.core.$ZodIssue, nameOf: (path: PropertyKey[]) => string): string {
  const field = nameOf(issue.path);
  const received = 'input' in issue && issue.input !== undefined ? ` but received ${show(issue.input)}` : '';
  switch (issue.code) {
    case 'unrecognized_keys':
      return `Unknown option${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => nameOf([...issue.path, k])).join(', ')}`;
    case 'custom':
      return `${field}: ${issue.message}`;
    case 'invalid_value':
      return `Expected one of ${issue.values.map(show).join(', ')} for ${field}${received}`;
    default:
      return `${issue.message.replace(/^Invalid input: /, '')} for ${field}${received}`;
  }
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  try {
    return JSON.stringify(value).slice(0, 80);
  } catch {
    return typeof value;
  }
}

/** Accepts a JSON list (`'["license","width"]'`, as img2dataset users type it) or a comma-separated list. */
export function parseList(value: string): string[] {
  const trimmed = value.trim();
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw invalidOption(`Expected a JSON list or a comma-separated list but received ${JSON.stringify(value)}`);
    }
    if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'string')) {
      throw invalidOption(`Expected a list of strings but received ${JSON.stringify(value)}`);
    }
    return parsed.map((v) => v.trim()).filter((v) => v.length > 0);
  }
  if (trimmed === '') return [];
  return trimmed
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

/**
 * A local path from a path or a `file://` URL; any other `scheme://` (fsspec's s3://, gs://, hf://… as img2dataset
 * users type them) is refused with a message naming `what` (the flag or spec field): taken as a path, it would
 * read or write a local folder named "s3:". `urls`: the input may also be read over http(s), which stays a URL.
 * `s3`: an `s3://bucket/prefix` is accepted too (object storage), normalised to lower-case `s3://`.
 */
export function localPathOf(value: string, what: string, { urls = false, s3 = false } = {}): string {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (scheme === undefined || (urls && (scheme === 'http' || scheme === 'https'))) return value;
  if (s3 && scheme === 's3') return 's3' + value.slice(2);
  if (scheme === 'file') {
    try {
      return fileURLToPath(value);
    } catch (err) {
      throw invalidOption(
        `Expected a local path for ${what} but received ${JSON.stringify(value)}: ${(err as Error).message} (a file URL is file:///absolute/path)`,
      );
    }
  }
  const kinds = ['a local path', ...(urls ? ['an http(s) URL'] : []), ...(s3 ? ['an s3:// URL'] : [])];
  const schemes = [...(urls ? ['http(s)'] : []), ...(s3 ? ['s3://'] : [])].join(' and ');
  const accepted = schemes === '' ? `${scheme}:// paths are not` : `only local paths and ${schemes} URLs are`;
  const instead = s3
    ? 'other clouds are read through their S3 API: s3://BUCKET with AWS_ENDPOINT_URL_S3 set, or mount the bucket'
    : 'mount the bucket, e.g. with s3fs or gcsfuse, or copy to and from a local folder';
  throw invalidOption(
    `Expected ${kinds.join(' or ')} for ${what} but received ${JSON.stringify(value)}: ${accepted} supported (${instead})`,
  );
}

/** No CLIP model has more dimensions than this; a bigger "embedding" is a mistake, not a query. */
export const MAX_QUERY_DIM = 65_536;

/** Index of the first NaN or infinite value, or -1. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) if (values[i]! - values[i]! !== 0) return i;
  return -1;
}

/** The one message for a NaN or infinite value, wherever it is found: `what: expected finite numbers but where is NaN`. */
export function nonFiniteMessage(what: string, where: string, value: number): string {
  return `${what}: expected finite numbers but ${where} is ${String(value)}`;
}

/**
 * A query embedding's values must all be finite (JSON from Python carries NaN and Infinity; a .npy may hold them):
 * the check for the spec, `query`, and `/knn-service`; the npy reader says the same for the embeddings it reads.
 */
export function requireFinite(values: ArrayLike<number>, what: string): void {
  const i = firstNonFinite(values);
  if (i >= 0) {
    throw queryInvalid(nonFiniteMessage(what, `value ${i}`, values[i]!), {
      hint: "An embedding with NaN or infinite values matches nothing: recompute it (check the model's output and the normalisation).",
    });
  }
}
