import { deserialize, serialize } from 'node:v8';
import { gunzipSync, gzipSync } from 'node:zlib';
import { inputMalformed } from '../core/errors.js';

/**
 * What the head hands to workers through the output folder and Redis (a shard's rows, a run's options): V8's
 * structured-clone format, the one worker threads already use for the same values, so bigint and binary cells,
 * dates and Infinity (img2dataset's "no limit") arrive as they left. gzip: url lists compress ~4×.
 */
export function encodeValue(value: unknown): Buffer {
  return gzipSync(serialize(value));
}

/** Inflating more than this is refused: a shard input is a few MB (10 000 rows), options a few kB. */
export const MAX_DECODED_BYTES = 512 * 1024 * 1024;

export function decodeValue<T>(bytes: Uint8Array, what: string): T {
  try {
    return deserialize(gunzipSync(bytes, { maxOutputLength: MAX_DECODED_BYTES })) as T;
  } catch (err) {
    throw inputMalformed(`${what} is damaged: ${(err as Error).message}`, {
      hint: 'It was written by the head of the job (a different clipstream version?); rerun the job with the same version everywhere.',
      cause: err,
    });
  }
}
