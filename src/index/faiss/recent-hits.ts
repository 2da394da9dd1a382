import type { Hits } from './searcher.js';

/** Hits remembered per index, at most: ~1.5 MB of map entries. */
const REMEMBERED = 32_768;
/** Of one search, the best this many are remembered (what a page shows, with room). */
const PER_SEARCH = 2_000;

/**
 * Where the rows recent searches returned live in an IVF index (id → list · 2^32 + offset). An IVF index has no
 * id → list map, so it cannot find an arbitrary row's codes without reading every list's ids; but "more like this"
 * asks for a row a search just returned, and its codes are then where that search found them. Least recently
 * returned first out.
 */
export class RecentHits {
  private readonly where = new Map<number, number>();

  remember(hits: Pick<Hits, 'ids' | 'payloads'>): void {
    const n = Math.min(hits.ids.length, PER_SEARCH);
    for (let i = 0; i < n; i++) {
      const id = hits.ids[i]!;
      this.where.delete(id); // re-inserted last: the map's order is least recently returned first
      this.where.set(id, hits.payloads[i]!);
    }
    for (const id of this.where.keys()) {
      if (this.where.size <= REMEMBERED) break;
      this.where.delete(id);
    }
  }

  payloadOf(id: number): number | undefined {
    return this.where.get(id);
  }
}
