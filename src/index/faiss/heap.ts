/**
 * faiss's k-slot result heap (faiss/utils/Heap.h) with its admission and tie rules, so results match faiss's:
 * a candidate enters only if strictly better than the current worst kept; sifts compare (value, id) pairs; the
 * final order is best first, equal values ordered by id (larger first for inner product, smaller first for L2).
 * For inner product (`higherIsBetter`) the heap top is the smallest kept value (faiss's CMin), for L2 the largest.
 * RangeSink collects a range search: every value strictly past the radius, the best `limit` kept.
 */
const FLT_MAX = 3.4028234663852886e38;

/** Where scans put candidates: those strictly better than `threshold` are offered to `add`. */
export interface ResultSink {
  /** A float32 value a candidate must strictly beat. */
  threshold: number;
  add(value: number, id: number, payload?: number): boolean;
}

export interface SortedHits {
  ids: number[];
  distances: number[];
  payloads: number[];
}

/** 2^21: the index field of a sort key; a sink never holds more entries (2 × its limit ≤ 2 × 10^6). */
const INDEX_SPAN = 2097152;

/**
 * Best first; equal values by id as faiss's heap_reorder leaves them (larger id first for IP, smaller for L2).
 * Sorted natively: each entry becomes one exact integer key, (float32 bits made order-preserving) · 2^21 + index, in a
 * Float64Array (a comparator sort of 5 000 hits took most of a range search).
 */
function sortHits(
  count: number,
  values: Float32Array,
  ids: Float64Array,
  payloads: Float64Array,
  higherIsBetter: boolean,
  limit: number,
): SortedHits {
  const bits = new Uint32Array(values.buffer, values.byteOffset, count);
  const keys = new Float64Array(count);
  let n = 0;
  for (let i = 0; i < count; i++) {
    if (ids[i] === -1) continue;
    const b = bits[i]!;
    const ascending = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
    keys[n++] = (higherIsBetter ? 0xffffffff - ascending : ascending) * INDEX_SPAN + i;
  }
  const sorted = keys.subarray(0, n).sort();
  const order = Array.from(sorted, (k) => k % INDEX_SPAN);
  orderTiesById(order, sorted, ids, higherIsBetter);
  order.length = Math.min(order.length, limit);
  return {
    ids: order.map((i) => ids[i]!),
    distances: order.map((i) => values[i]!),
    payloads: order.map((i) => payloads[i]!),
  };
}

/** Runs of equal values (rare) put in faiss's id order. */
function orderTiesById(order: number[], keys: Float64Array, ids: Float64Array, higherIsBetter: boolean): void {
  for (let start = 0; start < order.length;) {
    let end = start + 1;
    const value = Math.floor(keys[start]! / INDEX_SPAN);
    while (end < order.length && Math.floor(keys[end]! / INDEX_SPAN) === value) end++;
    if (end - start > 1) {
      const run = order.slice(start, end).sort((a, b) => (higherIsBetter ? ids[b]! - ids[a]! : ids[a]! - ids[b]!));
      order.splice(start, run.length, ...run);
    }
    start = end;
  }
}

export class TopK implements ResultSink {
  readonly values: Float32Array;
  readonly ids: Float64Array;
  /** Caller data kept with each entry (an IVF list and offset, for reconstruction). */
  readonly payloads: Float64Array;
  /** The value a candidate must strictly beat (float32). */
  threshold: number;

  constructor(
    readonly k: number,
    readonly higherIsBetter: boolean,
  ) {
    this.values = new Float32Array(k).fill(higherIsBetter ? -FLT_MAX : FLT_MAX);
    this.ids = new Float64Array(k).fill(-1);
    this.payloads = new Float64Array(k).fill(-1);
    this.threshold = k > 0 ? this.values[0]! : higherIsBetter ? FLT_MAX : -FLT_MAX;
  }

  /** Whether `value` (already rounded to float32) would enter. */
  admits(value: number): boolean {
    return this.higherIsBetter ? value > this.threshold : value < this.threshold;
  }

  /** Offers a candidate; `value` must be a float32 value (Math.fround). */
  add(value: number, id: number, payload = -1): boolean {
    if (!this.admits(value)) return false;
    this.replaceTop(value, id, payload);
    return true;
  }

  /** heap_replace_top: 1-based sift-down comparing (value, id). */
  private replaceTop(value: number, id: number, payload: number): void {
    const { values, ids, payloads, k } = this;
    const hi = this.higherIsBetter;
    // cmp2(a, b): a is "worse-or-equal-first" in heap order, as faiss's CMin / CMax cmp2.
    const before = (v1: number, i1: number, v2: number, i2: number) =>
      hi ? v1 < v2 || (v1 === v2 && i1 < i2) : v1 > v2 || (v1 === v2 && i1 > i2);
    let i = 1;
    for (;;) {
      const i1 = i << 1;
      const i2 = i1 + 1;
      if (i1 > k) break;
      let child: number;
      if (i2 === k + 1 || before(values[i1 - 1]!, ids[i1 - 1]!, values[i2 - 1]!, ids[i2 - 1]!)) child = i1;
      else child = i2;
      if (before(value, id, values[child - 1]!, ids[child - 1]!)) break;
      values[i - 1] = values[child - 1]!;
      ids[i - 1] = ids[child - 1]!;
      payloads[i - 1] = payloads[child - 1]!;
      i = child;
    }
    values[i - 1] = value;
    ids[i - 1] = id;
    payloads[i - 1] = payload;
    this.threshold = values[0]!;
  }

  /** The kept entries, best first (faiss's heap_reorder order), empty slots dropped. */
  sorted(): SortedHits {
    return sortHits(this.k, this.values, this.ids, this.payloads, this.higherIsBetter, this.k);
  }
}

/**
 * faiss's range search result, bounded: every candidate strictly past the radius is kept until 2 × limit are held,
 * then the best `limit` stay and the threshold rises to the worst of them (amortised O(n log n), memory O(limit)).
 */
export class RangeSink implements ResultSink {
  threshold: number;
  private values = new Float32Array(64);
  private ids = new Float64Array(64);
  private payloads = new Float64Array(64);
  private count = 0;
  /** More than `limit` results were past the radius. */
  truncated = false;

  constructor(
    readonly higherIsBetter: boolean,
    radius: number,
    readonly limit: number,
  ) {
    this.threshold = Math.fround(radius);
  }

  add(value: number, id: number, payload = -1): boolean {
    if (!(this.higherIsBetter ? value > this.threshold : value < this.threshold)) return false;
    if (this.count === this.values.length) this.grow();
    this.values[this.count] = value;
    this.ids[this.count] = id;
    this.payloads[this.count++] = payload;
    if (this.count >= 2 * this.limit) this.prune();
    return true;
  }

  private grow(): void {
    const size = this.values.length * 2;
    const values = new Float32Array(size);
    const ids = new Float64Array(size);
    const payloads = new Float64Array(size);
    values.set(this.values);
    ids.set(this.ids);
    payloads.set(this.payloads);
    Object.assign(this, { values, ids, payloads });
  }

  private prune(): void {
    const best = sortHits(this.count, this.values, this.ids, this.payloads, this.higherIsBetter, this.limit);
    this.count = best.ids.length;
    best.ids.forEach((id, i) => {
      this.values[i] = best.distances[i]!;
      this.ids[i] = id;
      this.payloads[i] = best.payloads[i]!;
    });
    this.threshold = best.distances.at(-1)!;
    this.truncated = true;
  }

  sorted(): SortedHits {
    if (this.count > this.limit) this.truncated = true;
    return sortHits(this.count, this.values, this.ids, this.payloads, this.higherIsBetter, this.limit);
  }
}

/**
 * Every candidate strictly past the radius, in the order scanned, handed over in batches (`take`): a streaming
 * range search holds one batch, never the whole result.
 */
export class CollectSink implements ResultSink {
  readonly threshold: number;
  ids: number[] = [];
  values: number[] = [];

  constructor(
    readonly higherIsBetter: boolean,
    radius: number,
  ) {
    this.threshold = Math.fround(radius);
  }

  add(value: number, id: number): boolean {
    if (!(this.higherIsBetter ? value > this.threshold : value < this.threshold)) return false;
    this.ids.push(id);
    this.values.push(value);
    return true;
  }

  take(): { ids: number[]; distances: number[] } {
    const out = { ids: this.ids, distances: this.values };
    this.ids = [];
    this.values = [];
    return out;
  }
}
