import fc from 'fast-check';
import { expect } from 'vitest';
import { isClipstreamError } from '../../src/core/errors.js';

/**
 * Property tests: a bounded number of cases per run, with one seed per test file, printed so that a CI failure can
 * be replayed: `CLIPSTREAM_FC_SEED=<seed> npx vitest run <file>` (fast-check also prints the seed and path of a
 * failing case). `CLIPSTREAM_FC_RUNS` multiplies the cases of every property (default 1; try 20 locally).
 */
const fromEnv = Number(process.env.CLIPSTREAM_FC_SEED);
export const SEED = Number.isInteger(fromEnv) ? fromEnv : Math.floor(Math.random() * 2 ** 31);
const scale = Number(process.env.CLIPSTREAM_FC_RUNS ?? 1);
const RUN_SCALE = Number.isFinite(scale) && scale > 0 ? scale : 1;
fc.configureGlobal({ seed: SEED });
process.stdout.write(`fast-check seed ${SEED} (replay: CLIPSTREAM_FC_SEED=${SEED})\n`);

/** Cases for a property: `base` scaled by CLIPSTREAM_FC_RUNS. */
export const runs = (base: number) => Math.max(1, Math.round(base * RUN_SCALE));

/** What a reader did with one input: gave a result, or refused it with a ClipstreamError code. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; code: string; message: string };

/**
 * Runs `work` under a deadline and checks the contract every reader keeps with untrusted input: it gives a result
 * or throws a ClipstreamError with a code; any other exception (TypeError, RangeError, a raw zlib or JSON error)
 * or a wait past `deadlineMs` fails the property. A synchronous loop cannot be interrupted from inside the process:
 * that kind of hang stalls the file (as a damaged parquet page did), and the seed printed first replays it.
 */
export async function outcomeOf<T>(work: () => Promise<T>, deadlineMs = 5_000): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${deadlineMs} ms`)), deadlineMs);
  });
  try {
    return { ok: true, value: await Promise.race([work(), deadline]) };
  } catch (err) {
    if (!isClipstreamError(err)) throw err;
    expect(err.code).toMatch(/^[A-Z_]+$/);
    expect(err.message.length).toBeGreaterThan(0);
    return { ok: false, code: err.code, message: err.message };
  } finally {
    clearTimeout(timer);
  }
}

/** Bytes derived from `base`: a few flipped bytes, a cut, or a splice of random bytes, as damage looks in files. */
export function damaged(base: Uint8Array): fc.Arbitrary<Uint8Array> {
  const n = Math.max(1, base.length);
  const flips = fc
    .array(fc.tuple(fc.nat(n - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 6 })
    .map((edits) => {
      const out = Uint8Array.from(base);
      for (const [at, xor] of edits) if (at < out.length) out[at]! ^= xor;
      return out;
    });
  const cut = fc.nat(n).map((at) => base.slice(0, at));
  const splice = fc.tuple(fc.nat(n), fc.uint8Array({ maxLength: 64 })).map(([at, bytes]) => {
    const out = new Uint8Array(base.length + bytes.length);
    out.set(base.subarray(0, at));
    out.set(bytes, at);
    out.set(base.subarray(at), at + bytes.length);
    return out;
  });
  return fc.oneof(flips, cut, splice);
}
