/**
 * A plan's long search (its second block) in memory that does not grow with the plan: the rows found are spilled
 * to disk as the search yields them, and every step that needs all of them — the search's limit, dedup across
 * queries by id and by url, the best `keep` of each query, its seeded order — works one bucket of rows at a time:
 *
 *   search ──► id buckets ──► by id: first-block rows left out, metadata joined (in id order), each row to the query
 *   (rows ≥ min_similarity,   (id ranges)        it is most similar to ──► url buckets ──► by url: each url to one
 *    best `limit` kept)                           (query, row) ──► order buckets (per query: key or similarity ranges)
 *                                                 ──► per query: the best `keep`, sorted, appended to the plan's store
 *
 * The rules are the in-memory rules of a first block (plan.ts `assignAcrossQueries`): ties go to the earlier query,
 * then the smaller id; a query keeps its best rows (similarity, then smaller id); `order: shuffle` sorts a block by
 * a seeded per-row key. A bucket holds about BUCKET_RECORDS rows (a few MB), except where many rows share one
 * similarity bin or one id (≤ one row per query), which bounds it too. Memory: one bucket, the write buffers
 * (8 MB), two similarity histograms per query (256 KB each).
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isClipstreamError } from '../core/errors.js';
import type { ResultBatch, SearchBackend, SearchResult, SearchResults } from '../index/search.js';
import type { PlanStore } from './plan-store.js';
import { orderKey, stringSeed } from './random.js';
import { binOf, HISTOGRAM_BINS, RankCut, SimilarityHistogram } from './similarity-cut.js';
import {
  bucketsFor,
  encodePayload,
  FIRST_BLOCK_FLAG,
  MAX_BUCKETS,
  BUCKET_RECORDS,
  tailStart,
  payloadUrl,
  readBucket,
  SpillWriter,
  urlKey,
  type SpillRecord,
} from './spill.js';
import type { Spec } from './spec.js';

export interface PlanProgress {
  stage: 'search' | 'dedup' | 'order';
  /** The query searched or ordered. */
  query?: string;
  /** Rows found (search), rows kept so far (order). */
  rows: number;
  /** Of the stage: lists or rows searched, buckets deduplicated, candidates written. */
  done?: number;
  total?: number;
}

export interface LongSearchInput {
  spec: Spec;
  backend: SearchBackend;
  vectors: Float32Array[];
  /** Ids are routed to buckets by range over [0, idSpan) (the index's rows), or by hash when unknown. */
  idSpan: number | null;
  /** Per query: candidates kept in all, rows its search keeps at most. */
  keep: number[];
  limits: number[];
  store: PlanStore;
  workDir: string;
  /** The first blocks' search results, left out of the second block (with dedup.ids, every query's). */
  first: SearchResults[];
  /** Candidates each query holds from its first block. */
  firstLengths: number[];
  /** Rows a bucket is planned for (BUCKET_RECORDS; tests make it small to split a small plan into many buckets). */
  bucketRecords?: number;
  onProgress?: (p: PlanProgress) => void;
}

/** What each searched query found: its rows at or above min_similarity (up to its limit), and whether more exist. */
export type Found = Map<number, { available: number; more: boolean }>;

interface Searched {
  spill: SpillWriter;
  histograms: Map<number, SimilarityHistogram>;
  found: Found;
}

/** A record whose metadata is known (its payload), and its url. */
interface Row extends SpillRecord {
  payload: Buffer;
  url: string;
}

/** Runs the long search of `more` into the store (appended after each query's first block); the rows found. */
export async function longSearch(input: LongSearchInput, more: number[]): Promise<Found> {
  await mkdir(input.workDir, { recursive: true });
  try {
    return await new LongSearch(input).run(more);
  } finally {
    await rm(input.workDir, { recursive: true, force: true });
  }
}

class LongSearch {
  private readonly spec: Spec;
  private readonly per: number;
  private readonly knownIds: Set<number>[];
  private readonly knownUrls: Set<string>;

  constructor(private readonly o: LongSearchInput) {
    this.spec = o.spec;
    this.per = o.bucketRecords ?? BUCKET_RECORDS;
    const allIds = new Set(o.first.flatMap((r) => r.map((x) => x.id)));
    this.knownIds = o.first.map((r) => (o.spec.dedup.ids ? allIds : new Set(r.map((x) => x.id))));
    this.knownUrls = new Set(
      o.spec.dedup.urls ? o.first.flat().flatMap((r) => (typeof r.url === 'string' ? [urlKey(r.url)] : [])) : [],
    );
  }

  async run(more: number[]): Promise<Found> {
    const searched = await this.searchAll(more);
    const cuts = await this.limitCuts(searched, more);
    const orderBuckets = this.orderBuckets(searched, cuts, more);
    const ordered = new SpillWriter(join(this.o.workDir, 'order'));
    const keepHistograms = new Map(more.map((q) => [q, new SimilarityHistogram()]));
    const toOrder = (r: SpillRecord) => {
      keepHistograms.get(r.query)!.add(r.similarity);
      ordered.add(orderBuckets.route(r), r);
    };
    await mkdir(ordered.dir, { recursive: true });
    if (this.spec.dedup.urls) {
      const byUrl = new SpillWriter(join(this.o.workDir, 'url'));
      await mkdir(byUrl.dir, { recursive: true });
      const urlBuckets = bucketsFor(searched.spill.totalRecords, this.per);
      await this.idPass(searched.spill, cuts, (r) => byUrl.add(urlHash(r.url) % urlBuckets, r), byUrl);
      await searched.spill.remove();
      await this.urlPass(byUrl, toOrder, ordered);
      await byUrl.remove();
    } else {
      await this.idPass(searched.spill, cuts, toOrder, ordered);
      await searched.spill.remove();
    }
    await ordered.flush(true);
    for (const q of more) await this.writeQuery(q, ordered, orderBuckets.of(q), keepHistograms.get(q)!);
    return searched.found;
  }

  /** Stage 1: every query's rows at or above its threshold, spilled to id buckets as the search yields them. */
  private async searchAll(more: number[]): Promise<Searched> {
    const spill = new SpillWriter(join(this.o.workDir, 'id'));
    await mkdir(spill.dir, { recursive: true });
    const span = this.o.idSpan;
    const expected = more.reduce((sum, q) => sum + Math.min(this.o.limits[q]!, span ?? Infinity), 0);
    const buckets = bucketsFor(Math.min(expected, Number.MAX_SAFE_INTEGER), this.per);
    const route = (id: number) =>
      span && id >= 0 && id < span ? Math.floor((id / span) * buckets) : urlHash(String(id)) % buckets;
    const histograms = new Map<number, SimilarityHistogram>();
    const found: Found = new Map();
    for (const q of more) {
      const histogram = new SimilarityHistogram();
      histograms.set(q, histogram);
      found.set(q, await this.searchQuery(q, histogram, (r) => spill.add(route(r.id), r), spill));
    }
    await spill.flush(true);
    return { spill, histograms, found };
  }

  /** One query's search: rows found are counted; those that can still be among its best `limit` are spilled. */
  private async searchQuery(
    q: number,
    histogram: SimilarityHistogram,
    add: (r: SpillRecord) => void,
    spill: SpillWriter,
  ): Promise<{ available: number; more: boolean }> {
    const limit = this.o.limits[q]!;
    const known = this.knownIds[q]!;
    const name = this.spec.queries[q]!.name;
    let floor = -1;
    let rows = 0;
    let floorAt = 0; // histogram.total when the floor was last raised (a histogram walk is 65 536 bins)
    let truncated: boolean | undefined;
    for await (const batch of this.batches(q)) {
      batch.ids.forEach((id, i) => {
        const similarity = batch.similarities[i]!;
        rows++;
        if (binOf(similarity) < floor) return;
        histogram.add(similarity);
        const payload = batch.rows ? encodePayload(batch.rows[i]!) : undefined;
        add({ id, similarity, query: q, flags: known.has(id) ? FIRST_BLOCK_FLAG : 0, payload });
      });
      await spill.flush();
      if (histogram.total > limit && histogram.total - floorAt >= Math.min(limit, this.per)) {
        floor = histogram.binOfRank(limit)?.bin ?? -1;
        floorAt = histogram.total;
      }
      if ('truncated' in batch) truncated = (batch as { truncated?: boolean }).truncated;
      this.o.onProgress?.({ stage: 'search', query: name, rows, ...batch.progress });
    }
    return { available: Math.min(rows, limit), more: truncated ?? rows > limit };
  }

  /**
   * A query's rows, streamed when the backend can (every row at or above the threshold, no dedup); else one
   * search of its best `limit` (a remote clip back; near-duplicate dedup, which compares every pair of results).
   */
  private async *batches(q: number): AsyncGenerator<ResultBatch & { truncated?: boolean }> {
    const query = this.spec.queries[q]!;
    const vector = this.o.vectors[q]!;
    const named = (err: unknown) =>
      isClipstreamError(err) && err.code === 'QUERY_INVALID' && !err.message.startsWith('query ')
        ? Object.assign(err, { message: `query ${query.name}: ${err.message}` })
        : err;
    try {
      if (this.o.backend.searchBatches && this.spec.dedup.near_duplicate === null) {
        yield* this.o.backend.searchBatches({ vector, minSimilarity: query.min_similarity, where: query.where });
        return;
      }
      const results = await this.o.backend.search({
        vector,
        minSimilarity: query.min_similarity,
        maxResults: this.o.limits[q]!,
        where: query.where,
        dedupUrls: this.spec.dedup.urls,
        nearDuplicate: this.spec.dedup.near_duplicate ?? undefined,
      });
      yield { ...resultBatch(results), truncated: results.truncated === true };
    } catch (err) {
      throw named(err);
    }
  }

  /** Per query, which spilled rows are among its best `limit`: exact, from the rows of the histogram's cut bin. */
  private async limitCuts(searched: Searched, more: number[]): Promise<Map<number, RankCut>> {
    const cutAt = new Map<number, { bin: number; above: number }>();
    for (const q of more) {
      const at = searched.histograms.get(q)!.binOfRank(this.o.limits[q]!);
      if (at) cutAt.set(q, at);
    }
    const inBins = await collectBins(searched.spill, cutAt);
    return new Map(
      more.map((q) => {
        const at = cutAt.get(q);
        return [q, at ? RankCut.resolve(at, this.o.limits[q]!, inBins.get(q)!) : RankCut.all()];
      }),
    );
  }

  /**
   * How each query's kept rows are routed to the buckets its candidates are ordered in: by key range (shuffle) or
   * by similarity range (best first), each bucket planned for BUCKET_RECORDS rows at most.
   */
  private orderBuckets(searched: Searched, cuts: Map<number, RankCut>, more: number[]) {
    const first = new Map<number, number>();
    const routes = new Map<number, (r: SpillRecord) => number>();
    let next = 0;
    for (const q of more) {
      const histogram = searched.histograms.get(q)!;
      const rows = Math.min(histogram.total, this.o.limits[q]!);
      const base = next;
      first.set(q, base);
      if (this.spec.order === 'shuffle') {
        const n = bucketsFor(rows, this.per);
        const seed = this.blockSeed(q);
        routes.set(q, (r) => base + Math.floor((orderKey(seed, r.id) / 2 ** 53) * n));
        next += n;
      } else {
        const ranges = similarityRanges(histogram, cuts.get(q)!.floorBin, this.per);
        routes.set(q, (r) => base + ranges.of[binOf(r.similarity)]!);
        next += ranges.count;
      }
    }
    return {
      route: (r: SpillRecord) => routes.get(r.query)!(r),
      of: (q: number) => {
        const end = more.indexOf(q) + 1 < more.length ? first.get(more[more.indexOf(q) + 1]!)! : next;
        return Array.from({ length: end - first.get(q)! }, (_, i) => first.get(q)! + i);
      },
    };
  }

  private blockSeed(q: number): number {
    return stringSeed(`${this.spec.seed}:${this.spec.queries[q]!.name}:1`);
  }

  /**
   * Stage 2, one id bucket at a time (ids in order, so metadata is read in id order): rows past a query's limit and
   * the first blocks' rows and urls left out; each id to the query it is most similar to (with dedup.ids); rows
   * without a url dropped (a row that cannot be downloaded is no candidate).
   */
  private async idPass(
    spill: SpillWriter,
    cuts: Map<number, RankCut>,
    out: (r: Row) => void,
    writer: SpillWriter,
  ): Promise<void> {
    const buckets = spill.buckets();
    for (const [i, b] of buckets.entries()) {
      const records = (await readBucket(spill.dir, b)).filter((r) => cuts.get(r.query)!.keeps(r));
      const rows = await this.withMetadata(records);
      rows.sort((a, b2) => a.id - b2.id || b2.similarity - a.similarity || a.query - b2.query);
      // Rows of one id are adjacent, best first (then the earlier query): with dedup.ids the first one not left
      // out owns the id; a row without a url is no candidate (and, owning its id, takes it from the others).
      let owned = NaN;
      for (const r of rows) {
        if (this.spec.dedup.ids && r.id === owned) continue;
        if (this.isKnown(r)) continue;
        owned = r.id;
        if (r.url.length > 0) out(r);
      }
      await writer.flush();
      this.o.onProgress?.({ stage: 'dedup', rows: writer.totalRecords, done: i + 1, total: buckets.length });
    }
  }

  private isKnown(r: Row): boolean {
    return (r.flags & FIRST_BLOCK_FLAG) !== 0 || this.knownUrls.has(r.url);
  }

  /** The rows' metadata: from their payload (a table scan read it), else read by id (a faiss folder's metadata). */
  private async withMetadata(records: SpillRecord[]): Promise<Row[]> {
    const missing = [...new Set(records.filter((r) => !r.payload).map((r) => r.id))].sort((a, b) => a - b);
    const byId = new Map<number, Record<string, unknown>>();
    for (let at = 0; at < missing.length; at += 10_000) {
      for (const { id, metadata } of await this.o.backend.getByIds(missing.slice(at, at + 10_000)))
        byId.set(id, metadata);
    }
    for (const r of records as Row[]) {
      r.payload ??= encodePayload(byId.get(r.id) ?? {});
      r.url = payloadUrl(r.payload);
    }
    return records as Row[];
  }

  /** Stage 3 (dedup.urls), one url bucket at a time: each url to its best (query, row) — ties: the earlier query. */
  private async urlPass(spill: SpillWriter, out: (r: SpillRecord) => void, writer: SpillWriter): Promise<void> {
    await spill.flush(true);
    const buckets = spill.buckets();
    for (const [i, b] of buckets.entries()) {
      const best = new Map<string, SpillRecord>();
      for (const r of await readBucket(spill.dir, b)) {
        const url = payloadUrl(r.payload!);
        const held = best.get(url);
        if (!held || r.similarity > held.similarity || (r.similarity === held.similarity && r.query < held.query))
          best.set(url, r);
        else if (r.similarity === held.similarity && r.query === held.query && r.id < held.id) best.set(url, r);
      }
      for (const r of best.values()) out(r);
      await writer.flush();
      this.o.onProgress?.({ stage: 'dedup', rows: writer.totalRecords, done: i + 1, total: buckets.length });
    }
  }

  /**
   * Stage 4, per query: its best rows up to what it keeps (after its first block), bucket after bucket in delivery
   * order, each sorted in memory and appended to the plan's store.
   */
  private async writeQuery(q: number, ordered: SpillWriter, buckets: number[], histogram: SimilarityHistogram) {
    const need = Math.max(0, this.o.keep[q]! - this.o.firstLengths[q]!);
    const at = histogram.binOfRank(need);
    let cut = RankCut.all();
    if (at) {
      const inBin: { similarity: number; id: number }[] = [];
      for (const b of buckets)
        for (const r of await readBucket(ordered.dir, b, false))
          if (r.query === q && binOf(r.similarity) === at.bin) inBin.push(r);
      cut = RankCut.resolve(at, need, inBin);
    }
    const seed = this.blockSeed(q);
    const shuffle = this.spec.order === 'shuffle';
    let written = 0;
    for (const b of buckets) {
      const kept = (await readBucket(ordered.dir, b)).filter((r) => r.query === q && cut.keeps(r));
      if (shuffle) {
        const keyed = kept.map((r) => ({ k: orderKey(seed, r.id), r }));
        keyed.sort((x, y) => x.k - y.k || x.r.id - y.r.id);
        keyed.forEach((x, i) => (kept[i] = x.r));
      } else kept.sort((x, y) => y.similarity - x.similarity || x.id - y.id);
      await this.o.store.appendLines(q, candidateLines(this.spec.queries[q]!.name, kept));
      written += kept.length;
      this.o.onProgress?.({
        stage: 'order',
        query: this.spec.queries[q]!.name,
        rows: written,
        done: written,
        total: need,
      });
    }
  }
}

/** The rows of each query's cut bin (`cutAt`), from the spilled records (their fixed part only). */
async function collectBins(
  spill: SpillWriter,
  cutAt: Map<number, { bin: number }>,
): Promise<Map<number, { similarity: number; id: number }[]>> {
  const out = new Map<number, { similarity: number; id: number }[]>([...cutAt.keys()].map((q) => [q, []]));
  if (cutAt.size === 0) return out;
  for (const b of spill.buckets()) {
    for (const r of await readBucket(spill.dir, b, false)) {
      const at = cutAt.get(r.query);
      if (at && binOf(r.similarity) === at.bin) out.get(r.query)!.push({ similarity: r.similarity, id: r.id });
    }
  }
  return out;
}

/**
 * Similarity bins (of rows at or above `floorBin`) grouped into ranges of about `per` rows, best first:
 * `of[bin]` is the range (bucket) of a bin. A bin is never split (rows of one bin share a bucket).
 */
function similarityRanges(
  histogram: SimilarityHistogram,
  floorBin: number,
  per: number,
): { of: Uint16Array; count: number } {
  const of = new Uint16Array(HISTOGRAM_BINS);
  let range = 0;
  let inRange = 0;
  for (let b = HISTOGRAM_BINS - 1; b >= 0; b--) {
    const n = b >= floorBin ? histogram.counts[b]! : 0;
    if (inRange > 0 && inRange + n > per && range < MAX_BUCKETS - 1) {
      range++;
      inRange = 0;
    }
    of[b] = range;
    inRange += n;
  }
  return { of, count: range + 1 };
}

function resultBatch(results: SearchResult[]): ResultBatch {
  return {
    ids: results.map((r) => r.id),
    similarities: results.map((r) => r.similarity),
    rows: results.map(({ id, similarity, ...row }) => (void id, void similarity, row)),
  };
}

/** The records' candidate lines, in one buffer: `{"query":…,"id":…,"similarity":…,` and the payload's tail. */
function candidateLines(query: string, records: SpillRecord[]): { data: Buffer; lengths: number[] } {
  const name = JSON.stringify(query);
  const heads = records.map((r) => `{"query":${name},"id":${r.id},"similarity":${r.similarity},`);
  const tails = records.map((r) => tailStart(r.payload!));
  const lengths = records.map((r, i) => Buffer.byteLength(heads[i]!) + r.payload!.length - tails[i]! + 1);
  const data = Buffer.allocUnsafe(lengths.reduce((a, b) => a + b, 0));
  let at = 0;
  records.forEach((r, i) => {
    at += data.write(heads[i]!, at);
    at += r.payload!.copy(data, at, tails[i]!);
    data[at++] = 10; // \n
  });
  return { data, lengths };
}

/** Which bucket a url (or an id outside the index's range) goes to: FNV-1a, as seeds are made. */
const urlHash = stringSeed;
