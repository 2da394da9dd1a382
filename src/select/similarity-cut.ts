/**
 * The best n of a stream of (similarity, id) pairs in bounded memory: a histogram of similarities (HISTOGRAM_BINS
 * bins over [-1, 1], 4 bytes each) says which bin the n-th best falls in; rows in lower bins are out, rows in higher
 * bins are in, and only the rows of that one bin are sorted (best similarity first, then the smaller id, the order a
 * plan ranks rows in) to find where exactly the n-th best is.
 */

/** Bins of width 2 / 65 536 ≈ 3·10⁻⁵ in similarity. */
export const HISTOGRAM_BINS = 65_536;

export function binOf(similarity: number): number {
  const b = Math.floor(((similarity + 1) / 2) * HISTOGRAM_BINS);
  return b < 0 ? 0 : b >= HISTOGRAM_BINS ? HISTOGRAM_BINS - 1 : b;
}

/** The rank order of a plan: higher similarity first, then the smaller id. */
export const ranksBefore = (a: { similarity: number; id: number }, b: { similarity: number; id: number }) =>
  a.similarity > b.similarity || (a.similarity === b.similarity && a.id < b.id);

export class SimilarityHistogram {
  readonly counts = new Uint32Array(HISTOGRAM_BINS);
  total = 0;

  add(similarity: number): void {
    this.counts[binOf(similarity)]!++;
    this.total++;
  }

  /**
   * Where the n-th best falls: its bin, and how many rows lie in the bins above it; undefined when there are at
   * most n rows (all of them are in).
   */
  binOfRank(n: number): { bin: number; above: number } | undefined {
    if (this.total <= n) return undefined;
    let above = 0;
    for (let b = HISTOGRAM_BINS - 1; b >= 0; b--) {
      const here = this.counts[b]!;
      if (above + here >= n) return { bin: b, above };
      above += here;
    }
    return undefined;
  }
}

/** Which rows are among the best n: all rows, or those above a bin and the best of that bin up to a last row. */
export class RankCut {
  private constructor(
    private readonly bin: number,
    /** The last row kept in `bin` (undefined: none of that bin). */
    private readonly last: { similarity: number; id: number } | undefined,
  ) {}

  static all(): RankCut {
    return new RankCut(-1, undefined);
  }

  /** The cut of a histogram for n, given the rows of its cut bin (read back by the caller). */
  static resolve(at: { bin: number; above: number }, n: number, inBin: { similarity: number; id: number }[]): RankCut {
    const sorted = [...inBin].sort((a, b) => (ranksBefore(a, b) ? -1 : ranksBefore(b, a) ? 1 : 0));
    const take = n - at.above;
    return new RankCut(at.bin, take > 0 ? sorted[Math.min(take, sorted.length) - 1] : undefined);
  }

  keeps(r: { similarity: number; id: number }): boolean {
    if (this.bin < 0) return true;
    const b = binOf(r.similarity);
    if (b !== this.bin) return b > this.bin;
    return this.last !== undefined && !ranksBefore(this.last, r);
  }

  /** Rows of lower bins are out for sure (a streaming search may drop them at once). */
  get floorBin(): number {
    return this.bin;
  }
}
