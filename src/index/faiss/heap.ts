/**
 * faiss's k-slot result heap (faiss/utils/Heap.h) with its admission and tie rules, so results match faiss's:
 * a candidate enters only if strictly better than the current worst kept; sifts compare (value, id) pairs; the
 * final order is best first, equal values ordered by id (larger first for inner product, smaller first for L2).
 * For inner product (`higherIsBetter`) the heap top is the smallest kept value (faiss's CMin), for L2 the largest.
 * A range search is the same heap started at the radius instead of the neutral value: only values strictly past
 * the radius enter, and the best `k` of them are kept.
 */
const FLT_MAX = 3.4028234663852886e38;

export class TopK {
  readonly values: Float32Array;
  readonly ids: Float64Array;
  /** Caller data kept with each entry (an IVF list and offset, for reconstruction). */
  readonly payloads: Float64Array;
  /** The value a candidate must strictly beat (float32). */
  threshold: number;

  constructor(
    readonly k: number,
    readonly higherIsBetter: boolean,
    start = higherIsBetter ? -FLT_MAX : FLT_MAX,
  ) {
    this.values = new Float32Array(k).fill(start);
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

  /** Whether every slot holds a result (a range search may have left qualifying rows out). */
  get full(): boolean {
    return this.k > 0 && this.ids.every((id) => id !== -1);
  }

  /** The kept entries, best first (faiss's heap_reorder order), empty slots dropped. */
  sorted(): { ids: number[]; distances: number[]; payloads: number[] } {
    const order: number[] = [];
    for (let i = 0; i < this.k; i++) if (this.ids[i] !== -1) order.push(i);
    const { values, ids } = this;
    const sign = this.higherIsBetter ? -1 : 1;
    order.sort((a, b) => sign * (values[a]! - values[b]!) || sign * (ids[a]! - ids[b]!));
    return {
      ids: order.map((i) => ids[i]!),
      distances: order.map((i) => values[i]!),
      payloads: order.map((i) => this.payloads[i]!),
    };
  }
}
