/** Seeded randomness: every rank and worker must draw the same numbers from the same seed, on any machine. */

/** mulberry32: a tiny 32-bit PRNG whose whole state is one integer (it fits in a resume state). */
export function nextRandom(state: number): { value: number; state: number } {
  const s = (state + 0x6d2b79f5) >>> 0;
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return { value: ((t ^ (t >>> 14)) >>> 0) / 4294967296, state: s };
}

/** A stateful generator over `nextRandom`; `state` can be read back and restored. */
export class Random {
  constructor(public state: number) {}
  next(): number {
    const r = nextRandom(this.state);
    this.state = r.state;
    return r.value;
  }
}

/** FNV-1a of a string: seeds derived from names ("seed:query", "seed:epoch:partition"). */
export function stringSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Fisher–Yates with a seeded generator, on an array or a typed array. */
export function shuffleInPlace<L extends { length: number; [i: number]: unknown }>(items: L, seed: number): L {
  const rand = new Random(seed);
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand.next() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
