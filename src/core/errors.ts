/**
 * One error class with a stable `code`; callers and tests branch on the code, never on the message.
 * Messages follow sharp's template where it fits: "Expected X for Y but received Z".
 *
 * The catalogue below is the one place a code's kind, CLI exit status and HTTP status live (as fastify's
 * `createError`): the CLI and the HTTP server both read them from here.
 */
export type ErrorKind =
  /** The user's input, options or files: exit 2, a 4xx. */
  | 'input'
  /** The machine or the network around us (a port in use, a worker that died): exit 1, a 5xx. */
  | 'environment'
  /** A bug in clipstream: exit 70, a 500, "please report". Never shown as the user's mistake. */
  | 'bug';

interface ErrorEntry {
  kind: ErrorKind;
  exit: number;
  http: number;
}

const input = (http = 400): ErrorEntry => ({ kind: 'input', exit: 2, http });
const environment = (http = 503): ErrorEntry => ({ kind: 'environment', exit: 1, http });

export const ERROR_CATALOGUE = {
  INVALID_OPTION: input(),
  INPUT_NOT_FOUND: input(404),
  INPUT_MALFORMED: input(),
  MISSING_COLUMN: input(),
  OUTPUT_CONFLICT: input(409),
  NPY_MALFORMED: input(),
  EMBEDDINGS_MISALIGNED: input(),
  MODEL_INVALID: input(),
  INDEX_INVALID: input(),
  QUERY_INVALID: input(),
  /** An HTTP route's resource (a stream, an index name in a path) that this server does not have. */
  NOT_FOUND: input(404),
  BODY_TOO_LARGE: input(413),
  /** A request without the server's token (`clipstream serve --token`). */
  UNAUTHORIZED: input(401),
  /** A request the server was not started to allow (a stream started from the page without --allow-new-streams). */
  FORBIDDEN: input(403),
  /** Too many heavy requests at once: the client retries after `Retry-After`. */
  SERVER_BUSY: environment(503),
  /** A stream partition that cannot deliver: every candidate failed, or its plan failed. */
  STREAM_FAILED: environment(502),
  STREAM_EXHAUSTED: environment(502),
  /** A row's image that could not be downloaded or decoded (a thumbnail of a dead link). */
  IMAGE_UNAVAILABLE: environment(502),
  PORT_IN_USE: input(),
  WORKER_FAILED: environment(),
  /** Object storage (S3 and compatible) that cannot be reached, or refuses us for a reason of its own. */
  STORAGE_UNAVAILABLE: environment(),
  /** The job queue's Redis cannot be reached (or went away and did not come back in time). */
  QUEUE_UNAVAILABLE: environment(),
  INTERNAL: { kind: 'bug', exit: 70, http: 500 },
} as const satisfies Record<string, ErrorEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export interface ErrorOptions {
  /** What the user can do about it, printed after the message by the CLI and sent to HTTP clients. */
  hint?: string;
  cause?: unknown;
}

export class ClipstreamError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ClipstreamError';
    this.code = code;
    this.hint = options.hint;
  }

  get kind(): ErrorKind {
    return ERROR_CATALOGUE[this.code].kind;
  }

  /** The CLI's exit status for this error. */
  get exitCode(): number {
    return ERROR_CATALOGUE[this.code].exit;
  }

  /** The HTTP status a server answers with for this error. */
  get statusCode(): number {
    return ERROR_CATALOGUE[this.code].http;
  }
}

export function defineError(code: ErrorCode) {
  return (message: string, options: ErrorOptions = {}) => new ClipstreamError(code, message, options);
}

export const invalidOption = defineError('INVALID_OPTION');
export const inputNotFound = defineError('INPUT_NOT_FOUND');
export const inputMalformed = defineError('INPUT_MALFORMED');
export const missingColumn = defineError('MISSING_COLUMN');
export const outputConflict = defineError('OUTPUT_CONFLICT');
export const npyMalformed = defineError('NPY_MALFORMED');
export const embeddingsMisaligned = defineError('EMBEDDINGS_MISALIGNED');
export const modelInvalid = defineError('MODEL_INVALID');
export const indexInvalid = defineError('INDEX_INVALID');
export const queryInvalid = defineError('QUERY_INVALID');
export const notFound = defineError('NOT_FOUND');
export const bodyTooLarge = defineError('BODY_TOO_LARGE');
export const unauthorized = defineError('UNAUTHORIZED');
export const forbidden = defineError('FORBIDDEN');
export const imageUnavailable = defineError('IMAGE_UNAVAILABLE');
export const serverBusy = defineError('SERVER_BUSY');
export const streamFailed = defineError('STREAM_FAILED');
export const streamExhausted = defineError('STREAM_EXHAUSTED');
export const portInUse = defineError('PORT_IN_USE');
export const workerFailed = defineError('WORKER_FAILED');
export const storageUnavailable = defineError('STORAGE_UNAVAILABLE');
export const queueUnavailable = defineError('QUEUE_UNAVAILABLE');
/** A broken invariant of ours, not the user's input. */
export const internalError = defineError('INTERNAL');

/** The helper of every code (the type makes a code without a helper a compile error). */
export const ERROR_HELPERS: { [C in ErrorCode]: (message: string, options?: ErrorOptions) => ClipstreamError } = {
  INVALID_OPTION: invalidOption,
  INPUT_NOT_FOUND: inputNotFound,
  INPUT_MALFORMED: inputMalformed,
  MISSING_COLUMN: missingColumn,
  OUTPUT_CONFLICT: outputConflict,
  NPY_MALFORMED: npyMalformed,
  EMBEDDINGS_MISALIGNED: embeddingsMisaligned,
  MODEL_INVALID: modelInvalid,
  INDEX_INVALID: indexInvalid,
  QUERY_INVALID: queryInvalid,
  NOT_FOUND: notFound,
  UNAUTHORIZED: unauthorized,
  FORBIDDEN: forbidden,
  IMAGE_UNAVAILABLE: imageUnavailable,
  BODY_TOO_LARGE: bodyTooLarge,
  SERVER_BUSY: serverBusy,
  STREAM_FAILED: streamFailed,
  STREAM_EXHAUSTED: streamExhausted,
  PORT_IN_USE: portInUse,
  WORKER_FAILED: workerFailed,
  STORAGE_UNAVAILABLE: storageUnavailable,
  QUEUE_UNAVAILABLE: queueUnavailable,
  INTERNAL: internalError,
};

export function isClipstreamError(err: unknown): err is ClipstreamError {
  return err instanceof ClipstreamError;
}
