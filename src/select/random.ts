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

/** murmur3's 32-bit finaliser: every input bit flips about half of the output bits. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A row's place in a seeded shuffle: the rows of a block are sorted by this key (then by id), which orders them as a
 * random permutation would, and lets a plan of any size be ordered on disk by key ranges (a row's key does not
 * depend on the other rows). `seed` is the block's seed (stringSeed of the spec's seed, the query, the block).
 */
export function orderKey(seed: number, id: number): number {
  const lo = id >>> 0;
  const hi = Math.floor(id / 4294967296) >>> 0;
  const a = fmix32(seed ^ fmix32((lo + 0x9e3779b9) ^ Math.imul(hi, 0x85ebca6b)));
  const b = fmix32(a ^ lo ^ 0x27d4eb2f);
  return a * 2097152 + (b >>> 11); // 53 bits: exact in a double
}

/**
 * A seeded permutation of 0…n-1 evaluated in place, without an array (a stripe's head may hold millions of
 * positions): a 4-round Feistel network over the smallest even power of two ≥ n, walked until it lands below n.
 */
export class Permutation {
  private readonly half: number;
  private readonly mask: number;
  private readonly keys: number[];

  constructor(
    readonly n: number,
    seed: number,
  ) {
    let bits = 2;
    while (2 ** bits < n) bits += 2;
    this.half = bits / 2;
    this.mask = (1 << this.half) - 1;
    this.keys = [1, 2, 3, 4].map((r) => fmix32(seed ^ Math.imul(r, 0x9e3779b9)));
  }

  /** The position at slot i. */
  at(i: number): number {
    if (this.n <= 1) return i;
    let x = i;
    do x = this.round(x, false);
    while (x >= this.n);
    return x;
  }

  /** The slot of position p (the inverse of `at`). */
  slotOf(p: number): number {
    if (this.n <= 1) return p;
    let x = p;
    do x = this.round(x, true);
    while (x >= this.n);
    return x;
  }

  private round(x: number, inverse: boolean): number {
    let left = Math.floor(x / 2 ** this.half);
    let right = x & this.mask;
    for (let r = 0; r < 4; r++) {
      if (inverse) {
        const k = this.keys[3 - r]!;
        [left, right] = [right ^ (fmix32(left ^ k) & this.mask), left];
      } else {
        const k = this.keys[r]!;
        [left, right] = [right, left ^ (fmix32(right ^ k) & this.mask)];
      }
    }
    return left * 2 ** this.half + right;
  }
}
