import * as lancedb from '@lancedb/lancedb';
import { queryInvalid } from '../core/errors.js';
import { requireIndexInfo, TABLE, type ColumnType, type IndexInfo } from './info.js';
import { annQuery } from './ann.js';
import { keptRows } from './dedup.js';
import { scanAbove } from './lance-scan.js';
import { MAX_SEARCH_RESULTS } from './limits.js';

export { MAX_SEARCH_RESULTS } from './limits.js';

export interface SearchQuery {
  vector: Float32Array;
  /** Results wanted when no threshold is given. Default 10. */
  k?: number;
  /** Every result at or above this similarity, up to `maxResults` (not just the top k). */
  minSimilarity?: number;
  maxResults?: number;
  /** SQL predicate on metadata columns, applied before ranking. */
  where?: string;
  /** Drop repeated urls (the best-ranked one is kept). Ids are unique by construction. */
  dedupUrls?: boolean;
  /**
   * Drop near-duplicates among the results, as clip back does: results whose vectors have a cosine above this
   * (clip back uses 0.94) are linked, and of each group of linked results only the best-ranked one is kept.
   */
  nearDuplicate?: number;
  /** Which embeddings to search: the images' (default) or the captions' (`text_vector`, when the folder had them). */
  column?: 'vector' | 'text_vector';
}

export interface SearchResult {
  id: number;
  similarity: number;
  [column: string]: unknown;
}

/** Best first. `truncated`: the search stopped at its limit (k or maxResults) while more rows qualified. */
export type SearchResults = SearchResult[] & { truncated?: boolean };

/**
 * How many rows a search returns at most: `maxResults` (default 10 000) with a threshold, else `k` (default 10).
 * A limit that is not an integer in 1…MAX_SEARCH_RESULTS is refused (QUERY_INVALID), never wrapped.
 */
export function resultLimit(q: SearchQuery): number {
  const [name, limit] = q.minSimilarity !== undefined ? ['maxResults', q.maxResults ?? 10_000] : ['k', q.k ?? 10];
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SEARCH_RESULTS) {
    throw queryInvalid(`Expected an integer from 1 to ${MAX_SEARCH_RESULTS} for ${name} but received ${limit}`, {
      hint: 'One search returns at most 2^32 − 1 rows (the index takes a 32-bit limit).',
    });
  }
  return limit;
}

/** A query of a streamed search: every row at or above `minSimilarity` (matching `where`). */
export interface StreamQuery {
  vector: Float32Array;
  minSimilarity: number;
  where?: string;
  column?: 'vector' | 'text_vector';
}

/** Results of a streamed search, in the order the index found them (not sorted). */
export interface ResultBatch {
  ids: number[];
  similarities: number[];
  /** Each row's metadata columns, when the search read them anyway (a table scan); else ask getByIds. */
  rows?: Record<string, unknown>[];
  /** How far the search is, when it knows (lists probed, rows scanned). */
  progress?: { done: number; total: number };
}

/** What the loader needs from an index, local (LanceDB) or remote (a clip back `/knn-service`). */
export interface SearchBackend {
  search(q: SearchQuery): Promise<SearchResults>;
  /**
   * Every row at or above the threshold, streamed in batches, so that memory holds a batch whatever the number of
   * rows (a plan of millions). No url or near-duplicate dedup: the caller dedups. Optional: a remote clip back
   * cannot stream (its API returns at most 10 000 results).
   */
  searchBatches?(q: StreamQuery): AsyncIterable<ResultBatch>;
  /**
   * As search, over the rows whose similarity is strictly below `maxSimilarity` only: the rows just under a
   * threshold, when more than a search returns lie above it (the page's threshold edge). Optional: a remote clip
   * back cannot.
   */
  searchBelow?(q: SearchQuery, maxSimilarity: number): Promise<SearchResults>;
  /** Metadata rows of the given ids, in the order asked; unknown ids are left out. */
  getByIds(ids: number[]): Promise<{ id: number; metadata: Record<string, unknown> }[]>;
  /**
   * The stored embeddings of the given ids (image embeddings by default), for "more like this"; unknown ids are
   * left out. Optional: a backend that cannot give them (a remote clip back) leaves it undefined.
   */
  vectorsOf?(ids: number[], column?: 'vector' | 'text_vector'): Promise<Map<number, Float32Array>>;
  close(): void;
}

/** What the server and the page need to know of an index, whatever its kind. */
export interface IndexSummary {
  count: number;
  dim: number;
  /** Metadata columns and their types. */
  columns: Record<string, ColumnType>;
  /** Caption embeddings can be searched (`column: 'text_vector'`, clip back's modality text). */
  has_text: boolean;
  model: string | null;
}

/** An index opened from a folder or URL: LanceDB (clipstream index) or faiss (clip-retrieval / LAION). */
export interface Index extends SearchBackend {
  info: IndexSummary;
}

/** A clipstream (LanceDB) index: its clipstream.json. */
export interface LanceIndex extends Index {
  info: IndexInfo;
}

/** Similarities are float32 dot products: a row exactly at the threshold must not be lost to rounding. */
const SLACK = 1e-6;
/** Probe partitions holding about this many rows per result wanted (twice as many when they were too few). */
const PROBED_ROWS_PER_RESULT = 1.25;
/** Past this share of the partitions probed, an exact scan costs less than the ANN search and its refinement. */
const MAX_PROBED_FRACTION = 0.25;

export async function openIndex(dir: string): Promise<LanceIndex> {
  const info = await requireIndexInfo(dir);
  const db = await lancedb.connect(dir);
  const table = await db.openTable(TABLE);
  const metaColumns = Object.keys(info.columns);

  function checkDimension(vector: Float32Array) {
    if (vector.length !== info.dim) {
      throw queryInvalid(`the query has ${vector.length} dimensions but the index at ${dir} has ${info.dim}`, {
        hint: 'Embed the query with the model that built the index.',
      });
    }
  }

  interface RunQuery extends SearchQuery {
    /** Only rows below this similarity (searchBelow): always an exact scan, distanceRange applies only there. */
    maxSimilarity?: number;
    columns?: string[];
    /** Scan every row (exact similarities, distanceRange applied exactly) instead of the ANN index. */
    exact?: boolean;
    nprobes?: number;
  }

  function vectorQuery(q: RunQuery, limit: number) {
    const column = q.column ?? 'vector';
    if (column === 'text_vector' && !info.has_text) {
      throw queryInvalid(`the index at ${dir} has no text embeddings (its embedding folder had no text_emb/)`, {
        hint: 'Search the image embeddings instead.',
      });
    }
    // Only the image vectors have an ANN index.
    const exact = q.exact || column !== 'vector' || info.ann.type === 'flat' || q.maxSimilarity !== undefined;
    let query = table.vectorSearch(q.vector).column(column).distanceType('dot').limit(limit);
    if (exact) query = query.bypassVectorIndex();
    else if (info.ann.type !== 'flat')
      query = annQuery(query, { ...info.ann, nprobes: q.nprobes ?? info.ann.nprobes }, limit);
    // LanceDB's dot distance is 1 - dot: similarity ≥ s ⇔ distance ≤ 1 - s. Only on exact scans: through an ANN index
    // the range is applied to the quantized distances before refinement, and most qualifying rows are lost.
    const lower = q.maxSimilarity !== undefined ? 1 - q.maxSimilarity : undefined;
    const upper = q.minSimilarity !== undefined ? 1 - q.minSimilarity + SLACK : undefined;
    if (exact && (lower !== undefined || upper !== undefined)) query = query.distanceRange(lower, upper);
    if (q.where) query = query.where(q.where);
    return query;
  }

  /** LanceDB's error for a predicate it cannot apply, as a QUERY_INVALID naming the predicate. */
  function predicateError(err: unknown, where: string | undefined): unknown {
    const message = (err as Error).message;
    if (where && /field|column|parse|sql|syntax/i.test(message)) {
      return queryInvalid(
        `the predicate ${JSON.stringify(where)} cannot be applied: ${message.replace(/^.*?(lance error: )?/, '')}`,
        { hint: `Columns of this index: ${metaColumns.join(', ')}` },
      );
    }
    return err;
  }

  async function run(q: RunQuery, limit: number) {
    checkDimension(q.vector);
    try {
      return await vectorQuery(q, limit)
        .select([...(q.columns ?? ['id', ...metaColumns]), '_distance'])
        .toArray();
    } catch (err) {
      throw predicateError(err, q.where);
    }
  }

  /**
   * Every row at or above `minSimilarity`, best first, up to `limit`. Through the ANN index first (IVF-PQ: enough
   * partitions probed to hold `limit` rows; HNSW: ef = limit); when the threshold binds (fewer than `limit` rows
   * qualify) the ANN index may have missed qualifying rows, so the answer comes from an exact scan instead — scarce
   * candidates are the ones that matter.
   */
  async function aboveThreshold(q: RunQuery, minSimilarity: number, limit: number) {
    const ann = info.ann;
    const allQualify = (rows: { _distance: unknown }[]) =>
      rows.every((r) => 1 - Number(r._distance) >= minSimilarity - SLACK);
    if (ann.type === 'ivf_hnsw_sq') {
      const rows = await run(q, limit);
      if (rows.length === limit && allQualify(rows)) return rows;
    } else if (ann.type === 'ivf_pq') {
      const rowsPerPartition = info.count / ann.num_partitions;
      let nprobes = Math.max(ann.nprobes, Math.ceil((PROBED_ROWS_PER_RESULT * limit) / rowsPerPartition));
      while (nprobes <= ann.num_partitions * MAX_PROBED_FRACTION) {
        const rows = await run({ ...q, nprobes }, limit);
        if (!allQualify(rows)) break;
        if (rows.length === limit) return rows;
        nprobes *= 2; // the probed partitions held fewer rows than wanted (they are uneven)
      }
    }
    return run({ ...q, exact: true }, limit);
  }

  async function searchRows(q: RunQuery): Promise<SearchResults> {
    const column = q.column ?? 'vector';
    const withColumns = { ...q, columns: q.nearDuplicate === undefined ? undefined : ['id', ...metaColumns, column] };
    const limit = resultLimit(q);
    const found =
      q.maxSimilarity !== undefined
        ? await run({ ...withColumns, exact: true }, limit)
        : q.minSimilarity !== undefined
          ? await aboveThreshold(withColumns, q.minSimilarity, limit)
          : await run(withColumns, limit);
    // distanceRange's lower bound is inclusive: a row exactly at maxSimilarity is not below it
    const rows =
      q.maxSimilarity === undefined ? found : found.filter((r) => 1 - Number(r._distance) < q.maxSimilarity!);
    const out: SearchResults = [];
    out.truncated = found.length >= limit;
    const keep = await keptRows(
      rows.length,
      { urls: q.dedupUrls, nearDuplicate: q.nearDuplicate },
      (i) => rows[i]!.url,
      (i) => Float32Array.from(rows[i]![column] as Iterable<number>),
    );
    for (const i of keep) {
      const row = rows[i]!;
      const result: SearchResult = { id: Number(row.id), similarity: 1 - Number(row._distance) };
      for (const c of metaColumns) result[c] = typeof row[c] === 'bigint' ? Number(row[c]) : row[c];
      out.push(result);
    }
    return out;
  }

  return {
    info,
    search: (q) => searchRows(q),
    searchBelow: (q, maxSimilarity) => searchRows({ ...q, maxSimilarity }),
    searchBatches(q) {
      checkDimension(q.vector);
      if ((q.column ?? 'vector') === 'text_vector' && !info.has_text)
        throw queryInvalid(`the index at ${dir} has no text embeddings (its embedding folder had no text_emb/)`);
      return scanAbove(table, info, q, (err) => predicateError(err, q.where));
    },
    async getByIds(ids) {
      const wanted = ids.filter((id) => Number.isSafeInteger(id) && id >= 0);
      if (wanted.length === 0) return [];
      const rows = await table
        .query()
        .where(`id IN (${wanted.join(',')})`)
        .select(['id', ...metaColumns])
        .toArray();
      const byId = new Map(rows.map((r) => [Number(r.id), r]));
      return wanted.flatMap((id) => {
        const row = byId.get(id);
        if (!row) return [];
        const metadata: Record<string, unknown> = {};
        for (const c of metaColumns) metadata[c] = typeof row[c] === 'bigint' ? Number(row[c]) : row[c];
        return [{ id, metadata }];
      });
    },
    async vectorsOf(ids, column = 'vector') {
      const wanted = ids.filter((id) => Number.isSafeInteger(id) && id >= 0);
      if (column === 'text_vector' && !info.has_text) throw queryInvalid(`the index at ${dir} has no text embeddings`);
      if (wanted.length === 0) return new Map();
      const rows = await table
        .query()
        .where(`id IN (${wanted.join(',')})`)
        .select(['id', column])
        .toArray();
      return new Map(rows.map((r) => [Number(r.id), Float32Array.from(r[column] as Iterable<number>)]));
    },
    close: () => table.close(),
  };
}
