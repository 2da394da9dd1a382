import { setTimeout as delay } from 'node:timers/promises';
import { isClipstreamError } from '../core/errors.js';
import { metaJson } from '../sink/members.js';
import { createTarSampleStream, type TarSampleStream } from '../sink/tar.js';
import type { Stream, StreamSample } from './engine.js';
import { toRecord } from './record.js';

/** The key of the member a failed stream ends with (`__error__.json`): no sample has it (keys are `e…p…s…`). */
export const ERROR_KEY = '__error__';

/** What `__error__.json` carries (and a served stream's HTTP error body): what went wrong and what to do. */
export interface StreamErrorBody {
  code: string;
  error: string;
  hint?: string;
}

export function streamErrorBody(err: unknown): StreamErrorBody {
  if (isClipstreamError(err) && err.kind !== 'bug')
    return { code: err.code, error: err.message, ...(err.hint ? { hint: err.hint } : {}) };
  return { code: 'INTERNAL', error: 'internal error in the stream (the server log has the details); please report it' };
}

export interface PartitionTarOptions {
  /**
   * Wait this long for the first sample before the tar starts: a stream that fails by then (nothing in the
   * partition, every host refused at once) throws here, so a server can answer with an HTTP error instead.
   */
  firstSampleWaitMs?: number;
  onSample?: (sample: StreamSample) => void;
  /** Hears a failure after the tar has started, before the tar ends with `__error__.json`. */
  onError?: (err: unknown) => void;
}

/**
 * One partition as a webdataset tar, each sample with its `.state` member: the one loop behind `serve`'s
 * partition URLs and `clipstream stream --output -`. Awaiting each write is the back-pressure. A stream that fails
 * once the tar has started ends with an `__error__.json` member (code, message, hint) and no end-of-archive
 * blocks: clipstream's Python client raises its message; `done` rejects with the error.
 */
export async function partitionTar(
  stream: Stream,
  o: PartitionTarOptions = {},
): Promise<TarSampleStream & { done: Promise<void> }> {
  const samples = stream[Symbol.asyncIterator]();
  let next = samples.next();
  if (o.firstSampleWaitMs) {
    const failed = await Promise.race([
      next.then(
        () => null,
        (err: unknown) => ({ err }),
      ),
      delay(o.firstSampleWaitMs, null),
    ]);
    if (failed) {
      await stream.close();
      throw failed.err;
    }
  }
  const tar = createTarSampleStream();
  const done = (async () => {
    try {
      for (let r = await next; !r.done; r = await next) {
        await tar.writeSample(toRecord(r.value, true));
        o.onSample?.(r.value);
        next = samples.next();
      }
      await tar.finish();
    } catch (err) {
      o.onError?.(err);
      await tar
        .cut({ name: `${ERROR_KEY}.json`, data: metaJson(streamErrorBody(err) as unknown as Record<string, unknown>) })
        .catch(() => {});
      throw err;
    }
  })();
  done.catch(() => {}); // observed by the caller, or not (a server's reader that left)
  return Object.assign(tar, { done });
}
