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

/** `inner` fed only the values not as good as `bound` (IP: < bound; L2: > bound): the rows under a threshold. */
export function belowSink(inner: ResultSink, ip: boolean, bound: number): ResultSink {
  return {
    get threshold() {
      return inner.threshold;
    },
    add: (value, id, payload) => (ip ? value < bound : value > bound) && inner.add(value, id, payload),
  };
}

export interface SortedHits {
  ids: number[];
  distances: number[];
  payloads: number[];
}

/**
 * Best first; equal values by id as faiss's heap_reorder leaves them (larger id first for IP, smaller for L2).
 * Each entry's float32 bits become an order-preserving uint32 key, radix-sorted with its index (a range search sorts
 * ~10 000 hits per query: a Float64Array key sort and the arrays built by callbacks took ~1 ms of a 4 ms search).
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
  const [unsortedKeys, unsortedOrder, k2, o2] = sortBuffers(count);
  let n = 0;
  for (let i = 0; i < count; i++) {
    if (ids[i] === -1) continue;
    const b = bits[i] === 0x80000000 ? 0 : bits[i]!; // −0 ties with 0
    const ascending = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
    unsortedKeys[n] = higherIsBetter ? ~ascending >>> 0 : ascending;
    unsortedOrder[n++] = i;
  }
  const [keys, order] = radixSort(unsortedKeys, unsortedOrder, k2, o2, n);
  orderTiesById(order, keys, n, ids, higherIsBetter);
  const m = Math.min(n, limit);
  const out: SortedHits = {
    ids: new Array<number>(m),
    distances: new Array<number>(m),
    payloads: new Array<number>(m),
  };
  for (let r = 0; r < m; r++) {
    const i = order[r]!;
    out.ids[r] = ids[i]!;
    out.distances[r] = values[i]!;
    out.payloads[r] = payloads[i]!;
  }
  return out;
}

/** Sorts up to this many entries in buffers kept from one sort to the next (1 MB), larger ones in their own. */
const KEPT_SORT_ENTRIES = 65536;
let kept = new Uint32Array(0);
const byteStarts = new Uint32Array(1024);

/** keys, order and the radix sort's two spare arrays for `count` entries (a range search sorts once per query). */
function sortBuffers(count: number): [Uint32Array, Uint32Array, Uint32Array, Uint32Array] {
  let buffer = kept;
  if (count > KEPT_SORT_ENTRIES) buffer = new Uint32Array(4 * count);
  else if (kept.length < 4 * count) buffer = kept = new Uint32Array(4 * Math.max(count, 1024));
  const part = (i: number) => buffer.subarray(i * count, (i + 1) * count);
  return [part(0), part(1), part(2), part(3)];
}

/**
 * Stable LSD radix sort of keys[0, n) ascending, `order` moved along (k2, o2: as long, overwritten): 8 bits a pass,
 * the four byte histograms counted in one read, a pass skipped when every key has the same byte there (scores of
 * one query share their top bits).
 */
function radixSort(
  keys: Uint32Array,
  order: Uint32Array,
  k2: Uint32Array,
  o2: Uint32Array,
  n: number,
): [Uint32Array, Uint32Array] {
  const start = byteStarts;
  start.fill(0);
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    start[k & 255]!++;
    start[256 + ((k >>> 8) & 255)]!++;
    start[512 + ((k >>> 16) & 255)]!++;
    start[768 + (k >>> 24)]!++;
  }
  for (let pass = 0; pass < 4 && n > 1; pass++) {
    const shift = 8 * pass;
    const base = 256 * pass;
    if (start[base + ((keys[0]! >>> shift) & 255)] === n) continue;
    for (let b = base, sum = 0; b < base + 256; b++) {
      const c = start[b]!;
      start[b] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const at = start[base + ((keys[i]! >>> shift) & 255)]!++;
      k2[at] = keys[i]!;
      o2[at] = order[i]!;
    }
    [keys, k2, order, o2] = [k2, keys, o2, order];
  }
  return [keys, order];
}

/** Runs of equal values (rare) put in faiss's id order. */
function orderTiesById(
  order: Uint32Array,
  keys: Uint32Array,
  n: number,
  ids: Float64Array,
  higherIsBetter: boolean,
): void {
  for (let start = 0; start < n;) {
    let end = start + 1;
    while (end < n && keys[end] === keys[start]) end++;
    if (end - start > 1)
      order.subarray(start, end).sort((a, b) => (higherIsBetter ? ids[b]! - ids[a]! : ids[a]! - ids[b]!));
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
  private values: Float32Array;
  private ids: Float64Array;
  private payloads: Float64Array;
  private count = 0;
  /** More than `limit` results were past the radius. */
  truncated = false;

  constructor(
    readonly higherIsBetter: boolean,
    radius: number,
    readonly limit: number,
  ) {
    this.threshold = Math.fround(radius);
    // Room for 4 096 entries (80 KB) to start, fewer for a small limit: a range search usually keeps thousands,
    // and each doubling copies them all (it never holds more than 2 × limit).
    const size = Math.max(1, Math.min(4096, 2 * limit));
    [this.values, this.ids, this.payloads] = [new Float32Array(size), new Float64Array(size), new Float64Array(size)];
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
