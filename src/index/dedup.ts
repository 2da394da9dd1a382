import { setImmediate as yieldToLoop } from 'node:timers/promises';

/** How a search's rows are deduplicated: urls seen before, and near-duplicates of a better-ranked kept row. */
export interface DedupOptions {
  urls?: boolean | undefined;
  /** A cosine: a row this close to a better-ranked kept row is dropped (clip back uses 0.94). */
  nearDuplicate?: number | undefined;
}

/** Compare with kept rows for at most this long before letting other requests run (10 000 results × 512 d: ~25 s). */
const SLICE_MS = 10;

/**
 * The rows to keep, best first (their positions in `urlOf`'s order), for every index backend: the first of each url,
 * and the first of each group of near-duplicates (inner product of their vectors ≥ the threshold), as clip back's
 * post-filter keeps them. The near-duplicate scan is quadratic in the rows: it yields to the event loop every few
 * milliseconds so that one large request does not stall the server's others.
 */
export async function keptRows(
  count: number,
  o: DedupOptions,
  urlOf: (i: number) => unknown,
  vectorOf: (i: number) => Float32Array,
): Promise<number[]> {
  const seenUrls = new Set<unknown>();
  const kept: Float32Array[] = [];
  const out: number[] = [];
  let slice = performance.now();
  for (let i = 0; i < count; i++) {
    const url = urlOf(i);
    if (o.urls && url != null) {
      if (seenUrls.has(url)) continue;
      seenUrls.add(url);
    }
    if (o.nearDuplicate !== undefined) {
      const v = vectorOf(i);
      if (kept.some((k) => dot(k, v) >= o.nearDuplicate!)) continue;
      kept.push(v);
      if (performance.now() - slice > SLICE_MS) {
        await yieldToLoop();
        slice = performance.now();
      }
    }
    out.push(i);
  }
  return out;
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
