/**
 * One error class with a stable `code`; callers and tests branch on the code, never on the message.
 * Messages follow sharp's template where it fits: "Expected X for Y but received Z".
 */
export type ErrorCode =
  | 'INVALID_OPTION'
  | 'INPUT_NOT_FOUND'
  | 'INPUT_MALFORMED'
  | 'MISSING_COLUMN'
  | 'OUTPUT_CONFLICT'
  | 'WORKER_FAILED'
  | 'NPY_MALFORMED'
  | 'EMBEDDINGS_MISALIGNED'
  | 'MODEL_INVALID'
  | 'INDEX_INVALID'
  | 'QUERY_INVALID'
  | 'STREAM_EXHAUSTED'
  | 'INTERNAL';

export class ClipstreamError extends Error {
  readonly code: ErrorCode;
  /** What the user can do about it, printed after the message by the CLI. */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ClipstreamError';
    this.code = code;
    this.hint = options.hint;
  }
}

export function defineError(code: ErrorCode) {
  return (message: string, options: { hint?: string; cause?: unknown } = {}) =>
    new ClipstreamError(code, message, options);
}

export const invalidOption = defineError('INVALID_OPTION');
export const inputNotFound = defineError('INPUT_NOT_FOUND');
export const inputMalformed = defineError('INPUT_MALFORMED');
export const missingColumn = defineError('MISSING_COLUMN');

export function isClipstreamError(err: unknown): err is ClipstreamError {
  return err instanceof ClipstreamError;
}
