/**
 * The long search of a plan (src/select/long-search.ts: rows spilled to disk in buckets, dedup by id and by url
 * one bucket at a time, the best `keep` found through a similarity histogram, ordered by key) gives exactly what
 * the in-memory rules give — the reference model below, written from docs/streaming.md: the best `limit` rows of a
 * query (similarity, then smaller id), first-block rows and urls left out, each id and each url to its best row
 * (ties: the earlier query, then the smaller id), rows without a url dropped, the best `keep` kept, in the seeded
 * key order or by similarity. Buckets are made tiny (1–8 rows) so that every step crosses bucket boundaries, ties
 * are common, some ids lie outside the index's range, some rows have no url, and the search yields its rows in
 * any order and batches, with their metadata or without (read by id).
 */
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { ResultBatch, SearchBackend, SearchResults } from '../../src/index/search.js';
import { longSearch } from '../../src/select/long-search.js';
import { PlanStore } from '../../src/select/plan-store.js';
import { orderKey, stringSeed } from '../../src/select/random.js';
import { parseSpec } from '../../src/select/spec.js';
import { runs } from '../helpers/property.js';

interface World {
  queries: { min: number; keep: number; limit: number }[];
  /** rows[i]: id, url ('' = none), similarity per query (undefined: below everything). */
  rows: { id: number; url: string; sims: (number | undefined)[] }[];
  /** Per query, ids of its first-block search results. */
  first: number[][];
  dedupIds: boolean;
  dedupUrls: boolean;
  order: 'shuffle' | 'similarity';
  seed: number;
  inline: boolean;
  batchSeed: number;
  bucketRecords: number;
  idSpan: number | null;
}

const SIMS = [0.1, 0.2, 0.2, 0.30000001, 0.3, 0.5, 0.9];

const world: fc.Arbitrary<World> = fc
  .record({
    nq: fc.integer({ min: 1, max: 3 }),
    n: fc.integer({ min: 0, max: 40 }),
    seed: fc.integer({ min: 0, max: 1000 }),
  })
  .chain(({ nq, n, seed }) =>
    fc.record({
      queries: fc.array(
        fc.record({
          min: fc.constantFrom(0, 0.2, 0.3),
          keep: fc.integer({ min: 1, max: 15 }),
          limit: fc.integer({ min: 1, max: 25 }),
        }),
        { minLength: nq, maxLength: nq },
      ),
      rows: fc.array(
        fc.record({
          big: fc.boolean(),
          url: fc.constantFrom('', 'a', 'b', 'c', 'd', 'e', 'é'),
          unique: fc.boolean(),
          sims: fc.array(fc.option(fc.constantFrom(...SIMS), { nil: undefined }), { minLength: nq, maxLength: nq }),
        }),
        { minLength: n, maxLength: n },
      ),
      first: fc.array(fc.array(fc.integer({ min: 0, max: Math.max(0, n - 1) }), { maxLength: 3 }), {
        minLength: nq,
        maxLength: nq,
      }),
      dedupIds: fc.boolean(),
      dedupUrls: fc.boolean(),
      order: fc.constantFrom('shuffle' as const, 'similarity' as const),
      seed: fc.constant(seed),
      inline: fc.boolean(),
      batchSeed: fc.integer(),
      bucketRecords: fc.integer({ min: 1, max: 8 }),
      idSpan: fc.constantFrom(null, 40),
    }),
  )
  .map((w) => ({
    ...w,
    rows: w.rows.map((r, i) => ({
      id: r.big ? 2 ** 40 + i : i,
      url: r.url === '' ? '' : r.unique ? `${r.url}${i}` : r.url,
      sims: r.sims,
    })),
    first: w.first.map((ids) => [...new Set(ids)].filter((i) => i < w.rows.length)),
  }))
  .map((w) => ({ ...w, first: w.first.map((ids) => ids.map((i) => w.rows[i]!.id)) }));

/** A backend over the world: query q's vector is [q]; rows come shuffled, in random batches. */
function backendOf(w: World): SearchBackend {
  const row = (r: World['rows'][number]) => ({ url: r.url === '' ? null : r.url, caption: `c${r.id}`, k: r.id % 3 });
  return {
    search: () => Promise.reject(new Error('the long search streams')),
    async *searchBatches(q) {
      const qi = q.vector[0]!;
      const found = w.rows.filter((r) => r.sims[qi] !== undefined && r.sims[qi]! >= q.minSimilarity);
      let s = w.batchSeed >>> 0;
      const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
      const shuffled = [...found].sort(() => rand() - 0.5);
      for (let at = 0; at < shuffled.length;) {
        const part = shuffled.slice(at, at + 1 + Math.floor(rand() * 5));
        at += part.length;
        const batch: ResultBatch = { ids: part.map((r) => r.id), similarities: part.map((r) => r.sims[qi]!) };
        if (w.inline) batch.rows = part.map(row);
        yield batch;
      }
    },
    async getByIds(ids) {
      return ids.flatMap((id) => {
        const r = w.rows.find((x) => x.id === id);
        return r ? [{ id, metadata: row(r) }] : [];
      });
    },
    close() {},
  };
}

type Ranked = { id: number; similarity: number; url: string; q: number };
const rank = (a: Ranked, b: Ranked) => b.similarity - a.similarity || a.id - b.id;

/** The in-memory rules. */
function reference(w: World, more: number[]): { ids: number[][]; found: [number, number, boolean][] } {
  const allFirst = new Set(w.first.flat());
  const firstUrls = new Set(
    w.first.flat().flatMap((id) => {
      const u = w.rows.find((r) => r.id === id)!.url;
      return w.dedupUrls && u !== '' ? [u] : [];
    }),
  );
  const found: [number, number, boolean][] = [];
  const second: Ranked[][] = w.queries.map(() => []);
  for (const q of more) {
    const all = w.rows
      .filter((r) => r.sims[q] !== undefined && r.sims[q]! >= w.queries[q]!.min)
      .map((r) => ({ id: r.id, similarity: r.sims[q]!, url: r.url, q }))
      .sort(rank);
    const limited = all.slice(0, w.queries[q]!.limit);
    found.push([q, limited.length, all.length > limited.length]);
    const known = w.dedupIds ? allFirst : new Set(w.first[q]);
    second[q] = limited.filter((r) => !known.has(r.id) && !firstUrls.has(r.url));
  }
  const flat = second.flat();
  const wins = (r: Ranked, same: (x: Ranked) => boolean) =>
    !flat.some(
      (x) =>
        x !== r &&
        same(x) &&
        (x.similarity > r.similarity || (x.similarity === r.similarity && (x.q < r.q || (x.q === r.q && x.id < r.id)))),
    );
  const ids = w.queries.map((_, q) => {
    if (!more.includes(q)) return [];
    const owned = second[q]!.filter(
      (r) =>
        (!w.dedupIds || wins(r, (x) => x.id === r.id)) &&
        (!w.dedupUrls || wins(r, (x) => x.url === r.url)) &&
        r.url !== '',
    );
    const kept = owned.slice(0, Math.max(0, w.queries[q]!.keep - 2));
    if (w.order === 'similarity') return kept.map((r) => r.id);
    const seed = stringSeed(`${w.seed}:q${q}:1`);
    return kept.sort((a, b) => orderKey(seed, a.id) - orderKey(seed, b.id) || a.id - b.id).map((r) => r.id);
  });
  return { ids, found };
}

describe('the long search, bucket by bucket, gives what the in-memory rules give', () => {
  test('any rows, ties, urls, first blocks, dedup settings and orders', async () => {
    await fc.assert(
      fc.asyncProperty(world, async (w) => {
        const dir = await mkdtemp(join(tmpdir(), 'clipstream-long-search-'));
        try {
          const spec = parseSpec(
            {
              index: dir,
              queries: w.queries.map((q, i) => ({ name: `q${i}`, embedding: [1], count: 1, min_similarity: q.min })),
              dedup: { ids: w.dedupIds, urls: w.dedupUrls },
              order: w.order,
              seed: w.seed,
            },
            'spec',
            dir,
          );
          const store = await PlanStore.create(
            dir,
            spec.queries.map((q) => q.name),
          );
          // Two first-block candidates per query already in the store: the long search appends after them.
          for (const q of w.queries.keys())
            await store.append(
              q,
              [0, 1].map((i) => ({ id: -1 - i, similarity: 1, url: 'x', caption: null, metadata: {} })),
            );
          const more = [...w.queries.keys()].filter((q) => q !== 1); // a query without a long search stays as it is
          const first: SearchResults[] = w.first.map((ids) =>
            ids.map((id) => ({ id, similarity: 1, url: w.rows.find((r) => r.id === id)!.url || null })),
          );
          const found = await longSearch(
            {
              spec,
              backend: backendOf(w),
              vectors: w.queries.map((_, q) => Float32Array.of(q)),
              idSpan: w.idSpan,
              keep: w.queries.map((q) => q.keep),
              limits: w.queries.map((q) => q.limit),
              store,
              workDir: join(dir, '.work'),
              first,
              firstLengths: w.queries.map(() => 2),
              bucketRecords: w.bucketRecords,
            },
            more,
          );
          await store.publish();
          const want = reference(w, more);
          for (const q of w.queries.keys()) {
            const got: number[] = [];
            for (let i = 2; i < store.length(q); i++) got.push((await store.at(q, i))!.id);
            expect(got).toEqual(want.ids[q]);
          }
          expect([...found].map(([q, f]) => [q, f.available, f.more])).toEqual(want.found);
          await store.close();
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: runs(120) },
    );
  }, 120_000);
});
