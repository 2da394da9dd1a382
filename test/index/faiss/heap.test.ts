import { describe, expect, it } from 'vitest';
import { RangeSink, TopK } from '../../../src/index/faiss/heap.js';

/** Candidates with many exact ties (values from a small set), and negative, zero and positive values. */
function candidates(n: number, seed: number) {
  let s = seed;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  return Array.from({ length: n }, (_, i) => ({
    value: Math.fround(Math.floor(rand() * 40) / 8 - 2.5),
    id: i * 7 + Math.floor(rand() * 5),
  }));
}

/** faiss's final order: best first, equal values larger id first (IP) / smaller id first (L2). */
const reference = (xs: { value: number; id: number }[], ip: boolean) =>
  [...xs].sort((a, b) => (ip ? b.value - a.value || b.id - a.id : a.value - b.value || a.id - b.id));

describe('result heaps', () => {
  it.each([true, false])('TopK keeps the best k in faiss order, ties by id (ip %s)', (ip) => {
    for (const seed of [1, 2, 3]) {
      const xs = candidates(500, seed);
      const heap = new TopK(37, ip);
      for (const x of xs) heap.add(x.value, x.id);
      const got = heap.sorted();
      const want = reference(xs, ip).slice(0, 37);
      expect(got.distances).toEqual(want.map((x) => x.value));
      // Which of several tied ids survive at the cut depends on scan order (as in faiss); above the cut, all do.
      const cut = want.at(-1)!.value;
      expect(got.ids.filter((_, i) => got.distances[i] !== cut)).toEqual(
        want.filter((x) => x.value !== cut).map((x) => x.id),
      );
    }
  });

  it.each([true, false])('RangeSink keeps every value strictly past the radius, best first, bounded (ip %s)', (ip) => {
    const xs = candidates(3000, 9);
    const radius = 0.25;
    const past = reference(
      xs.filter((x) => (ip ? x.value > radius : x.value < radius)),
      ip,
    );
    const all = new RangeSink(ip, radius, 100_000);
    for (const x of xs) all.add(x.value, x.id);
    const got = all.sorted();
    expect(got.ids).toEqual(past.map((x) => x.id));
    expect(all.truncated).toBe(false);
    const few = new RangeSink(ip, radius, 50); // pruned many times on the way
    for (const x of xs) few.add(x.value, x.id);
    const best = few.sorted();
    expect(best.distances).toEqual(past.slice(0, 50).map((x) => x.value));
    expect(few.truncated).toBe(true);
  });

  it.each([
    [20_000, true],
    [20_000, false],
    [70_000, true], // more than the sort's kept buffers hold
  ])('RangeSink sorts %i distinct float32 values of every sign and size (ip %s)', (n, ip) => {
    // Values spread over many exponents, so each byte of the radix sort's keys varies (the tests above tie a lot).
    let seed = 5;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
    const xs = Array.from({ length: n }, (_, i) => ({
      value: Math.fround((rand() - 0.5) * 2 ** Math.floor(rand() * 40 - 20)),
      id: i,
    }));
    xs.push(
      { value: 0, id: n },
      { value: -0, id: n + 1 },
      { value: Math.fround(3e38), id: n + 2 },
      { value: Math.fround(-3e38), id: n + 3 },
    );
    const sink = new RangeSink(ip, ip ? -3.4e38 : 3.4e38, 100_000);
    for (const x of xs) sink.add(x.value, x.id);
    const got = sink.sorted();
    const want = reference(xs, ip);
    expect(got.distances).toEqual(want.map((x) => x.value));
    expect(got.ids).toEqual(want.map((x) => x.id)); // 0 and −0 are a tie, ordered by id
  });
});
