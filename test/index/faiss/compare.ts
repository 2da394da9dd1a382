import { expect } from 'vitest';
import type { Neighbors } from '../../../src/index/faiss/open.js';

/** Scores closer than this are ties: faiss's float32 SIMD sums and ours may order them either way. */
export const TIE = 2e-5;
/** The bound on similarities. */
export const TOLERANCE = 1e-4;

/**
 * Our top-k against faiss's (ids, distances with −1 padding): the same number of results, distances within
 * TOLERANCE position by position, and the same id at each position unless faiss has that id at a score tied
 * with ours (a reordering of equal scores). Returns the number of tie reorderings seen.
 */
export function expectSameTopK(ours: Neighbors, faissIds: number[], faissDistances: number[], label: string): number {
  const n = faissIds.indexOf(-1) === -1 ? faissIds.length : faissIds.indexOf(-1);
  expect(ours.ids.length, `${label}: result count`).toBe(n);
  let reordered = 0;
  for (let i = 0; i < n; i++) {
    expect(Math.abs(ours.distances[i]! - faissDistances[i]!), `${label}: distance at ${i}`).toBeLessThanOrEqual(
      TOLERANCE,
    );
    if (ours.ids[i] === faissIds[i]) continue;
    const j = faissIds.indexOf(ours.ids[i]!);
    const tied = j >= 0 && Math.abs(faissDistances[j]! - ours.distances[i]!) <= TIE;
    expect(
      tied,
      `${label}: id ${ours.ids[i]} at ${i} (faiss: ${faissIds[i]}, ${faissDistances[i]} vs ${ours.distances[i]})`,
    ).toBe(true);
    reordered++;
  }
  return reordered;
}

/** Range results as sets: every id faiss returns, and no other, except scores within TIE of the radius. */
export function expectSameRange(
  ours: Neighbors,
  faissIds: number[],
  faissDistances: number[],
  radius: number,
  label: string,
): void {
  const theirs = new Map(faissIds.map((id, i) => [id, faissDistances[i]!]));
  const mine = new Map(ours.ids.map((id, i) => [id, ours.distances[i]!]));
  for (const [id, dist] of theirs) {
    if (!mine.has(id))
      expect(Math.abs(dist - radius), `${label}: faiss's ${id} (${dist}) missing`).toBeLessThanOrEqual(TIE);
    else expect(Math.abs(mine.get(id)! - dist), `${label}: distance of ${id}`).toBeLessThanOrEqual(TOLERANCE);
  }
  for (const [id, dist] of mine) {
    if (!theirs.has(id)) expect(Math.abs(dist - radius), `${label}: extra ${id} (${dist})`).toBeLessThanOrEqual(TIE);
  }
}
