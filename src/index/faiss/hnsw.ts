/**
 * HNSW search over a flat-storage graph, step for step as faiss (faiss/impl/HNSW.cpp, search_impl): greedy descent
 * from the entry point through the upper levels, then the level-0 search with a bounded candidate set of
 * max(efSearch, k) ("MinimaxHeap", popped entries lazily invalidated) and the relative-distance stop: stop when
 * efSearch of the candidate slots, popped ones included, are strictly better than the popped one. Used for HNSW
 * indexes and for IVF's HNSW coarse quantizers (k = nprobe).
 */
import type { HnswGraph } from './format.js';
import type { ResultSink } from './heap.js';
import { MatrixKernel } from './kernels.js';
import { dot, l2sq } from './vectors.js';

/** The candidate set: a heap whose top is the worst candidate, with faiss's (value, id) sift order. */
class Candidates {
  readonly ids: Int32Array;
  readonly dis: Float32Array;
  size = 0;
  valid = 0;

  constructor(
    readonly capacity: number,
    readonly hi: boolean,
  ) {
    this.ids = new Int32Array(capacity);
    this.dis = new Float32Array(capacity);
  }

  /** a sorts before b in heap order (worse first). */
  private before(v1: number, i1: number, v2: number, i2: number): boolean {
    return this.hi ? v1 < v2 || (v1 === v2 && i1 < i2) : v1 > v2 || (v1 === v2 && i1 > i2);
  }

  push(id: number, value: number): void {
    if (this.size === this.capacity) {
      const top = this.dis[0]!;
      if (!(this.hi ? value > top : value < top)) return;
      if (this.ids[0] !== -1) this.valid--;
      this.popTop();
    }
    let i = ++this.size;
    const { ids, dis } = this;
    while (i > 1) {
      const parent = i >> 1;
      if (!this.before(value, id, dis[parent - 1]!, ids[parent - 1]!)) break;
      dis[i - 1] = dis[parent - 1]!;
      ids[i - 1] = ids[parent - 1]!;
      i = parent;
    }
    dis[i - 1] = value;
    ids[i - 1] = id;
    this.valid++;
  }

  /** faiss's heap_pop: the last entry sifts down from the top. */
  private popTop(): void {
    const { ids, dis } = this;
    const k = this.size;
    const value = dis[k - 1]!;
    const id = ids[k - 1]!;
    let i = 1;
    for (;;) {
      const i1 = i << 1;
      const i2 = i1 + 1;
      if (i1 > k) break;
      const child = i2 === k + 1 || this.before(dis[i1 - 1]!, ids[i1 - 1]!, dis[i2 - 1]!, ids[i2 - 1]!) ? i1 : i2;
      if (this.before(value, id, dis[child - 1]!, ids[child - 1]!)) break;
      dis[i - 1] = dis[child - 1]!;
      ids[i - 1] = ids[child - 1]!;
      i = child;
    }
    dis[i - 1] = dis[k - 1]!;
    ids[i - 1] = ids[k - 1]!;
    this.size--;
  }

  /** Value of the entry popBest returned last. */
  poppedValue = 0;

  /**
   * The best valid entry's id (−1 when none), invalidated in place; scans from the end, keeping the last-found of
   * equal values (faiss's scalar pop_min).
   */
  popBest(): number {
    const { ids, dis } = this;
    let i = this.size - 1;
    while (i >= 0 && ids[i] === -1) i--;
    if (i < 0) return -1;
    let best = i;
    for (i--; i >= 0; i--) {
      if (ids[i] !== -1 && (this.hi ? dis[i]! > dis[best]! : dis[i]! < dis[best]!)) best = i;
    }
    const id = ids[best]!;
    ids[best] = -1;
    this.valid--;
    this.poppedValue = dis[best]!;
    return id;
  }

  countBetter(value: number): number {
    let n = 0;
    for (let i = 0; i < this.size; i++) if (this.hi ? this.dis[i]! > value : this.dis[i]! < value) n++;
    return n;
  }
}

export class HnswSearcher {
  private readonly visited: Uint8Array;
  private generation = 0;
  private readonly d: number;
  private readonly ip: boolean;
  /** The vectors in a WebAssembly kernel's memory (undefined: the JS loops). */
  private readonly kernel: MatrixKernel | undefined;

  constructor(
    readonly graph: HnswGraph,
    readonly vectors: Float32Array,
    d: number,
    metricIsIp: boolean,
  ) {
    this.visited = new Uint8Array(graph.levels.length);
    this.d = d;
    this.ip = metricIsIp;
    this.kernel = MatrixKernel.of(vectors, d);
  }

  private score(q: Float32Array, node: number): number {
    const k = this.kernel;
    if (k) return Math.fround(this.ip ? k.ip(0, node * this.d, this.d) : k.l2(0, node * this.d, this.d));
    return Math.fround(
      this.ip ? dot(q, 0, this.vectors, node * this.d, this.d) : l2sq(q, 0, this.vectors, node * this.d, this.d),
    );
  }

  private better(a: number, b: number): boolean {
    return this.ip ? a > b : a < b;
  }

  /** First neighbour slot of `node` at `level`; the level's slots end at begin + cum[level+1] − cum[level]. */
  private begin(node: number, level: number): number {
    return this.graph.offsets[node]! + this.graph.cum[level]!;
  }

  /**
   * Fills `sink` with the graph search's results for `q`. `k` sizes the candidate set as faiss does
   * (max(efSearch, k)): the number of results for a top-k search, 1 for a range search.
   */
  search(q: Float32Array, sink: ResultSink, efSearch: number, k: number): void {
    const g = this.graph;
    if (g.entryPoint < 0) return;
    this.kernel?.setQuery(q);
    let nearest = g.entryPoint;
    let dNearest = this.score(q, nearest);
    for (let level = g.maxLevel; level >= 1; level--) {
      for (;;) {
        const previous = nearest;
        const begin = this.begin(previous, level);
        const end = begin + g.cum[level + 1]! - g.cum[level]!;
        for (let j = begin; j < end; j++) {
          const v = g.neighbors[j]!;
          if (v < 0) break;
          const dv = this.score(q, v);
          if (this.better(dv, dNearest)) {
            nearest = v;
            dNearest = dv;
          }
        }
        if (nearest === previous) break;
      }
    }
    this.level0(q, sink, nearest, dNearest, efSearch, k);
  }

  private nextGeneration(): number {
    if (++this.generation === 256) {
      this.visited.fill(0);
      this.generation = 1;
    }
    return this.generation;
  }

  private level0(q: Float32Array, sink: ResultSink, start: number, dStart: number, efSearch: number, k: number): void {
    const g = this.graph;
    const mark = this.nextGeneration();
    const visited = this.visited;
    // max(efSearch, k) as faiss; never more slots than nodes (a set that cannot fill behaves the same), so a huge
    // efSearch cannot allocate beyond the graph.
    const candidates = new Candidates(Math.min(Math.max(efSearch, k, 1), g.levels.length), this.ip);
    candidates.push(start, dStart);
    sink.add(dStart, start);
    visited[start] = mark;
    for (;;) {
      const popped = candidates.valid > 0 ? candidates.popBest() : -1;
      if (popped < 0) break;
      if (candidates.countBetter(candidates.poppedValue) >= efSearch) break;
      const begin = this.begin(popped, 0);
      const end = begin + g.cum[1]! - g.cum[0]!;
      for (let j = begin; j < end; j++) {
        const v = g.neighbors[j]!;
        if (v < 0) break;
        if (visited[v] === mark) continue;
        visited[v] = mark;
        const dv = this.score(q, v);
        sink.add(dv, v);
        candidates.push(v, dv);
      }
    }
  }
}
