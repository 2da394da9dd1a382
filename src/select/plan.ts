import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { loadClipModel, type ClipModel } from '../clip/index.js';
import { invalidOption, isClipstreamError, queryInvalid } from '../core/errors.js';
import { openSearchBackend, type IndexIdentity } from '../index/open-backend.js';
import type { SearchBackend, SearchResult, SearchResults } from '../index/search.js';
import { longSearch, type PlanProgress } from './long-search.js';
import { planFolder } from './plan-folder.js';
import { PlanStore, type CandidateList } from './plan-store.js';
import { embedQuery, needsModel } from './query-embedding.js';
import { orderKey, stringSeed } from './random.js';
import { queryKind, type QueryKind, type QuerySpec, type Spec } from './spec.js';

export type { CandidateList } from './plan-store.js';
export type { PlanProgress } from './long-search.js';

/**
 * A plan: every query resolved against the index into an ordered list of candidates (more than asked, so dead
 * links can be replaced), deduplicated across queries. The engine streams partitions of a plan; the plan is what
 * makes every rank and worker agree on who delivers what without talking to each other.
 */

export interface Candidate {
  id: number;
  similarity: number;
  url: string;
  caption: string | null;
  /** The index row's other metadata columns. */
  metadata: Record<string, unknown>;
}

export interface PlannedQuery {
  name: string;
  kind: QueryKind;
  requested: number;
  /**
   * Rows of the index found at or above min_similarity (and matching `where`), before cross-query dedup. The search
   * stops at what the plan can use, so when `available_more` is true there are more than this in the index.
   */
  available: number;
  available_more: boolean;
  /** Candidates kept for this query. */
  planned: number;
  min_similarity: number;
  weight: number;
}

export type { IndexIdentity } from '../index/open-backend.js';

export interface PlanHeader {
  /** 2: candidates in candidates.jsonl + positions-{q}.bin (1 was one candidates.parquet, read whole). */
  format_version: 2;
  /** Hash of the index identity, the candidates and the seed: resume states carry it. */
  id: string;
  created_at: string;
  index: IndexIdentity;
  seed: number;
  order: Spec['order'];
  image: Spec['image'];
  fetch: Spec['fetch'];
  cache: Spec['cache'];
  queries: PlannedQuery[];
}

export interface Plan {
  header: PlanHeader;
  /**
   * Per query (same order as header.queries), the candidates in delivery order: on disk in the plan's folder,
   * read one at a time (`await list.at(i)`), never all in memory. (An array is a CandidateList too.)
   */
  candidates: CandidateList[];
  /** Human-readable warnings (a query that cannot be satisfied). */
  warnings: string[];
  /**
   * Set while the plan is still being resolved (`openPlan`): every query's first block is in `candidates`, the
   * rest is appended when this settles, and `header.queries` (available, planned) and `warnings` are final then.
   * It is removed once it has resolved; it rejects if the search failed.
   */
  pending?: Promise<void>;
  /** The folder holding the candidates: `clipstream plan --output`, a plan folder read, or a temporary one. */
  dir?: string;
  /** Waits for the long search, releases the files, and removes the folder when it was temporary. */
  close?(): Promise<void>;
}

export interface ResolveOptions {
  /** Reuse an already loaded model (the server embeds many specs with one). */
  model?: ClipModel;
  /** Rows of each query's first block; FIRST_BLOCK by default (tests make it small). */
  firstBlock?: number;
  /**
   * Called once the first search is under way (LanceDB searches on its own threads): the moment to do other
   * start-up work on this one, such as loading the modules that will stream the plan.
   */
  whileSearching?: () => void;
  /**
   * The plan folder the candidates are written to as they are found (`clipstream plan --output`); default: a
   * temporary folder, removed by `plan.close()` or when the process exits.
   */
  dir?: string;
  /** How the long search is going (rows found, buckets deduplicated, candidates written). */
  onProgress?: (p: PlanProgress) => void;
}

/** near_duplicate compares every pair of a query's results: past this many, a plan refuses it. */
export const NEAR_DUPLICATE_MAX_RESULTS = 20_000;

/**
 * Each query's candidates come in two blocks: its best FIRST_BLOCK rows (a quick search: a stream can start on
 * them), then the rest of what the plan keeps (the long search, running while the first samples download). Each
 * block is deduplicated across queries and ordered on its own, and the second leaves out what the first holds.
 */
export const FIRST_BLOCK = 512;

/** The whole plan: every block resolved. */
export async function resolvePlan(spec: Spec, opts: ResolveOptions = {}): Promise<Plan> {
  const plan = await openPlan(spec, opts);
  try {
    await plan.pending;
  } catch (err) {
    await plan.close?.(); // its folder's files, and the folder when it is a temporary one
    throw err;
  }
  return plan;
}

/** The plan as soon as every query's first block is known; the rest arrives through `plan.pending`. */
export async function openPlan(spec: Spec, opts: ResolveOptions = {}): Promise<Plan> {
  checkNearDuplicate(spec);
  const { backend, identity } = await openBackend(spec);
  const folder = await planFolder(opts.dir).catch((err: unknown) => {
    backend.close();
    throw err;
  });
  let store: PlanStore | undefined;
  let handedOver = false;
  try {
    const vectors = await queryVectors(spec, opts.model, identity.dim);
    const resolver = new PlanResolver(spec, backend, vectors, opts.firstBlock ?? FIRST_BLOCK);
    const first = await resolver.firstBlocks(opts.whileSearching);
    const candidates = assignAcrossQueries(first, spec).map((owned, qi) =>
      ordered(owned.slice(0, resolver.keep[qi]), spec, qi, 0),
    );
    store = await PlanStore.create(
      folder.dir,
      spec.queries.map((q) => q.name),
    );
    for (const [qi, list] of candidates.entries()) await store.append(qi, list);
    const id = planId(identity, spec, vectors, resolver.firstBlock, candidates);
    const header = planHeader(spec, identity, id, first, candidates);
    const plan = openedPlan(header, store, folder);
    const more = resolver.queriesNeedingMore(first, candidates);
    handedOver = true;
    if (more.length === 0) {
      backend.close();
      plan.warnings = warningsOf(header.queries);
      return plan;
    }
    const rest = resolver
      .rest(plan, store, first, more, { identity, dir: folder.dir, onProgress: opts.onProgress })
      .finally(() => backend.close());
    rest.catch(() => {}); // observed by whoever awaits plan.pending
    plan.pending = rest;
    return plan;
  } finally {
    if (!handedOver) {
      backend.close();
      await store?.close();
      await folder.release();
    }
  }
}

/** A plan over its store; closing it waits for the long search and removes a temporary folder. */
function openedPlan(header: PlanHeader, store: PlanStore, folder: Awaited<ReturnType<typeof planFolder>>): Plan {
  const plan: Plan = {
    header,
    candidates: header.queries.map((_, qi) => store.list(qi)),
    warnings: [],
    dir: folder.dir,
    close: async () => {
      await plan.pending?.catch(() => {});
      await store.close();
      await folder.release();
    },
  };
  return plan;
}

/** near_duplicate compares every pair of a query's results: a query that may search more is refused by name. */
function checkNearDuplicate(spec: Spec): void {
  if (spec.dedup.near_duplicate === null) return;
  for (const q of spec.queries) {
    const keep = Math.ceil(q.count * spec.oversample);
    const limit = searchLimit(keep);
    if (limit > NEAR_DUPLICATE_MAX_RESULTS)
      throw invalidOption(
        `query ${q.name}: dedup.near_duplicate compares every pair of a query's results, and this query may search ${limit} rows (count ${q.count} × oversample ${spec.oversample}, and room for dedup); at most ${NEAR_DUPLICATE_MAX_RESULTS} can be compared`,
        { hint: 'Ask for fewer samples of this query, lower oversample, or set dedup.near_duplicate: null.' },
      );
  }
}

/** Rows a query's search keeps at most: what it keeps, plus room for what cross-query dedup removes. */
const searchLimit = (keep: number) => keep + Math.ceil(keep * 0.25) + 16;

/** The searches behind a plan: per query, what it keeps, how far it searches, its first block and the rest. */
class PlanResolver {
  /** Candidates kept per query: count × oversample. */
  readonly keep: number[];
  /** Rows searched per query: what it keeps, plus room for what cross-query dedup removes. */
  private readonly limits: number[];

  constructor(
    private readonly spec: Spec,
    private readonly backend: SearchBackend,
    private readonly vectors: Float32Array[],
    readonly firstBlock: number,
  ) {
    this.keep = spec.queries.map((q) => Math.ceil(q.count * spec.oversample));
    this.limits = this.keep.map(searchLimit);
  }

  async search(qi: number, maxResults: number): Promise<SearchResults> {
    const q = this.spec.queries[qi]!;
    const results = await this.backend
      .search({
        vector: this.vectors[qi]!,
        minSimilarity: q.min_similarity,
        maxResults,
        where: q.where,
        dedupUrls: this.spec.dedup.urls,
        nearDuplicate: this.spec.dedup.near_duplicate ?? undefined,
      })
      .catch((err: unknown) => {
        throw isClipstreamError(err) && err.code === 'QUERY_INVALID' ? prefixed(err, `query ${q.name}: `) : err;
      });
    // Ties (identical embeddings are common: re-uploads) in a stable order, so every process plans alike.
    results.sort((a, b) => b.similarity - a.similarity || a.id - b.id);
    return results;
  }

  /** Every query's quick search; `whileSearching` runs once the first is under way. */
  async firstBlocks(whileSearching?: () => void): Promise<SearchResults[]> {
    const first: SearchResults[] = [];
    for (const qi of this.spec.queries.keys()) {
      const searching = this.search(qi, Math.min(this.firstBlock, this.limits[qi]!));
      searching.catch(() => {}); // awaited below, also if the hook throws
      if (qi === 0) whileSearching?.();
      first.push(await searching);
    }
    return first;
  }

  /** A query needs its long search when its quick one stopped short of both its limit and what it keeps. */
  queriesNeedingMore(first: SearchResults[], candidates: Candidate[][]): number[] {
    return [...this.spec.queries.keys()].filter(
      (qi) =>
        first[qi]!.truncated === true && this.limits[qi]! > this.firstBlock && candidates[qi]!.length < this.keep[qi]!,
    );
  }

  /**
   * The long searches of `more`: the second block of each query, appended to its candidates in the store, and the
   * header's counts and the warnings made final. The second block leaves out the first blocks' rows: every query's
   * with dedup.ids, else the query's own (src/select/long-search.ts, in memory that does not grow with the plan).
   */
  async rest(
    plan: Plan,
    store: PlanStore,
    first: SearchResults[],
    more: number[],
    o: { identity: IndexIdentity; dir: string; onProgress?: (p: PlanProgress) => void },
  ): Promise<void> {
    const found = await longSearch(
      {
        spec: this.spec,
        backend: this.backend,
        vectors: this.vectors,
        idSpan: o.identity.count,
        keep: this.keep,
        limits: this.limits,
        store,
        workDir: join(o.dir, '.work'),
        first,
        firstLengths: plan.header.queries.map((q) => q.planned),
        onProgress: o.onProgress,
      },
      more,
    );
    await store.publish();
    plan.header.queries.forEach((q, qi) => {
      const f = found.get(qi);
      if (f) Object.assign(q, { available: f.available, available_more: f.more });
      q.planned = store.length(qi);
    });
    plan.warnings.push(...warningsOf(plan.header.queries));
    delete plan.pending;
  }
}

function planHeader(
  spec: Spec,
  identity: IndexIdentity,
  id: string,
  first: SearchResults[],
  candidates: Candidate[][],
): PlanHeader {
  const totalCount = spec.queries.reduce((sum, q) => sum + q.count, 0);
  return {
    format_version: 2,
    id,
    created_at: new Date().toISOString(),
    index: identity,
    seed: spec.seed,
    order: spec.order,
    image: spec.image,
    fetch: spec.fetch,
    cache: spec.cache,
    queries: spec.queries.map((q, qi) => ({
      name: q.name,
      kind: queryKind(q),
      requested: q.count,
      available: first[qi]!.length,
      available_more: first[qi]!.truncated === true,
      planned: candidates[qi]!.length,
      min_similarity: q.min_similarity,
      weight: q.weight ?? q.count / totalCount,
    })),
  };
}

/**
 * One block of a query's candidates in delivery order: sorted by a seeded per-row key (shuffle; the long search
 * orders its block by the same key, on disk) or by similarity.
 */
function ordered(results: SearchResult[], spec: Spec, qi: number, block: number): Candidate[] {
  const list = results.map(toCandidate);
  if (spec.order !== 'shuffle') return list;
  const name = spec.queries[qi]!.name;
  const seed = stringSeed(block === 0 ? `${spec.seed}:${name}` : `${spec.seed}:${name}:${block}`);
  const keys = new Map(list.map((c) => [c, orderKey(seed, c.id)]));
  return list.sort((a, b) => keys.get(a)! - keys.get(b)! || a.id - b.id);
}

function warningsOf(queries: PlannedQuery[]): string[] {
  return queries.flatMap((q) =>
    q.planned < q.requested
      ? [
          `query ${q.name}: ${q.requested} requested but only ${q.planned} candidates at similarity ≥ ${q.min_similarity}` +
            ` (${q.available} found in the index before dedup across queries); dead links cannot all be replaced and samples will repeat` +
            ' — lower min_similarity, relax where, or ask for fewer',
        ]
      : [],
  );
}

/** Every query's embedding (the model is loaded only for text and image queries, and closed after). */
async function queryVectors(spec: Spec, given: ClipModel | undefined, dim: number | null): Promise<Float32Array[]> {
  const modelNeeded = spec.queries.some(needsModel);
  let model = given;
  const ownModel = modelNeeded && !model;
  try {
    if (ownModel) {
      if (!spec.model) {
        throw invalidOption('the spec has text or image queries but no model', {
          hint: 'Add `model: PATH` (the CLIP model folder that built the index) to the spec.',
        });
      }
      model = await loadClipModel(spec.model);
    }
    const vectors: Float32Array[] = [];
    for (const q of spec.queries) vectors.push(await queryVector(q, model, dim));
    return vectors;
  } finally {
    if (ownModel) await model?.close();
  }
}

/** The spec's index, of whatever kind; its rows must have urls to download. */
async function openBackend(spec: Spec): Promise<{ backend: SearchBackend; identity: IndexIdentity }> {
  const { backend, kind, identity, columns } = await openSearchBackend(spec.index).catch((err: unknown) => {
    throw prefixed(err, 'index: ');
  });
  if (columns && !columns.includes('url')) {
    backend.close();
    throw invalidOption(`index: ${spec.index as string} has no url column, so its rows cannot be downloaded`, {
      hint:
        kind === 'faiss'
          ? 'A faiss folder needs metadata/ (parquet or arrow files with a url column, row i describing vector i).'
          : 'Import an embedding folder whose metadata parquet has a url column.',
    });
  }
  return { backend, identity };
}

/** The error with its message prefixed (which spec field it concerns). */
function prefixed(err: unknown, prefix: string): unknown {
  if (err instanceof Error && !err.message.startsWith(prefix)) err.message = prefix + err.message;
  return err;
}

async function queryVector(q: QuerySpec, model: ClipModel | undefined, dim: number | null): Promise<Float32Array> {
  const vector = await embedQuery(q, model, `query ${q.name}`);
  if (dim !== null && vector.length !== dim) {
    throw queryInvalid(`query ${q.name}: the embedding has ${vector.length} dimensions but the index has ${dim}`, {
      hint: 'Embed queries with the model that built the index.',
    });
  }
  return vector;
}

/**
 * A sample belongs to one query: the one where it is most similar (ties: the earlier query). With dedup.urls,
 * the same holds for urls across queries.
 */
function assignAcrossQueries(perQuery: SearchResult[][], spec: Spec): SearchResult[][] {
  const bestById = new Map<number, { query: number; similarity: number }>();
  const bestByUrl = new Map<unknown, { query: number; similarity: number; id: number }>();
  perQuery.forEach((results, qi) => {
    for (const r of results) {
      const prev = bestById.get(r.id);
      if (!prev || r.similarity > prev.similarity) bestById.set(r.id, { query: qi, similarity: r.similarity });
      if (spec.dedup.urls && r.url != null) {
        const u = bestByUrl.get(r.url);
        if (!u || r.similarity > u.similarity) bestByUrl.set(r.url, { query: qi, similarity: r.similarity, id: r.id });
      }
    }
  });
  return perQuery.map((results, qi) =>
    results.filter((r) => {
      if (spec.dedup.ids && bestById.get(r.id)!.query !== qi) return false;
      if (spec.dedup.urls && r.url != null) {
        const u = bestByUrl.get(r.url)!;
        if (u.query !== qi || u.id !== r.id) return false;
      }
      return typeof r.url === 'string' && r.url.length > 0;
    }),
  );
}

function toCandidate(r: SearchResult): Candidate {
  const { id, similarity, url, caption, ...metadata } = r;
  return { id, similarity, url: String(url), caption: caption == null ? null : String(caption), metadata };
}

/**
 * What the candidates depend on — the index, the query vectors and every field that selects or orders — and the
 * first blocks themselves (a remote index has no identity of its own), so that a stream can carry the id before
 * the long search has ended. Searches are deterministic: the same inputs give the same candidates in every process.
 */
function planId(
  identity: IndexIdentity,
  spec: Spec,
  vectors: Float32Array[],
  firstBlock: number,
  firstBlocks: Candidate[][],
): string {
  const h = createHash('sha256');
  const queries = spec.queries.map((q) => [q.name, q.count, q.min_similarity, q.where ?? null, q.weight ?? null]);
  h.update(
    JSON.stringify({
      identity,
      seed: spec.seed,
      order: spec.order,
      oversample: spec.oversample,
      dedup: spec.dedup,
      image: spec.image,
      queries,
      firstBlock,
      format: 2,
    }),
  );
  for (const v of vectors) h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  for (const list of firstBlocks) h.update(`|${list.map((c) => c.id).join(',')}`);
  return h.digest('hex').slice(0, 16);
}

/** Every candidate of every query, in memory: for small plans, tools and tests (a stream reads them lazily). */
export async function candidatesOf(plan: Plan): Promise<Candidate[][]> {
  const out: Candidate[][] = [];
  for (const list of plan.candidates) {
    const all: Candidate[] = [];
    for (let i = 0; i < list.length; i++) all.push((await list.at(i))!);
    out.push(all);
  }
  return out;
}
