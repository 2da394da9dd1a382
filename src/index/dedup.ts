import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { dot } from './faiss/vectors.js';

/** How a search's rows are deduplicated: urls seen before, and near-duplicates of a better-ranked row. */
export interface DedupOptions {
  urls?: boolean | undefined;
  /** A cosine: rows linked by a cosine strictly above it form a group, of which only the best is kept (clip back: 0.94). */
  nearDuplicate?: number | undefined;
}

/** Compare pairs for at most this long before letting other requests run (10 000 results × 512 d: ~25 s). */
const SLICE_MS = 10;

/**
 * The rows to keep, best first (their positions in `urlOf`'s order), for every index backend: the first of each url,
 * then of those the best of each group of near-duplicates (clip back's `connected_components_dedup`).
 */
export async function keptRows(
  count: number,
  o: DedupOptions,
  urlOf: (i: number) => unknown,
  vectorOf: (i: number) => Float32Array,
): Promise<number[]> {
  const seenUrls = new Set<unknown>();
  const rows: number[] = [];
  for (let i = 0; i < count; i++) {
    const url = urlOf(i);
    if (o.urls && url != null) {
      if (seenUrls.has(url)) continue;
      seenUrls.add(url);
    }
    rows.push(i);
  }
  if (o.nearDuplicate === undefined) return rows;
  const unique = await nearDuplicatesKept(
    rows.map((i) => vectorOf(i)),
    o.nearDuplicate,
  );
  return rows.filter((_, j) => unique[j]);
}

/**
 * clip back's near-duplicate removal (`connected_components_dedup`): the vectors are scaled to unit length, every
 * pair with a cosine strictly above the threshold (faiss's range search keeps scores > radius) is linked, and of
 * each connected group only its best-ranked member (the first in the list) is kept. So a row linked only to a row
 * that is itself dropped is dropped too, as clip back drops it.
 *
 * Every pair is compared: n²/2 dot products, as clip back's IndexFlatIP range search does (≤ 10 000 results a
 * request). It yields to the event loop every few milliseconds so that one large request does not stall the
 * server's others.
 */
export async function nearDuplicatesKept(vectors: Float32Array[], threshold: number): Promise<boolean[]> {
  const unit = vectors.map(unitLength);
  const parent = Int32Array.from(unit.keys());
  const root = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  let slice = performance.now();
  for (let i = 0; i < unit.length; i++) {
    for (let j = i + 1; j < unit.length; j++) {
      if (dot(unit[i]!, 0, unit[j]!, 0, unit[i]!.length) <= threshold) continue;
      const [a, b] = [root(i), root(j)];
      // The smaller index stays the root: a group's root is its best-ranked member.
      if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
    }
    if (performance.now() - slice > SLICE_MS) {
      await yieldToLoop();
      slice = performance.now();
    }
  }
  return unit.map((_, i) => root(i) === i);
}

function unitLength(v: Float32Array): Float32Array {
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  return norm > 0 ? v.map((x) => x / norm) : v;
}
