/**
 * A faiss index folder as a SearchBackend (src/index/search.ts), as clip back serves it: top-k or every result
 * past a minimum similarity (faiss's range search), ids → metadata rows, url dedup, near-duplicate dedup on the
 * vectors decoded from the index (clip back's way: inner products of the reconstructions ≥ the threshold).
 * Similarity: the inner product for IP indexes (what clip back returns); for L2 indexes of unit vectors,
 * 1 − d/2 (d the squared distance), which is the same cosine.
 */
import { queryInvalid } from '../../core/errors.js';
import { keptRows } from '../dedup.js';
import type { Index, IndexSummary, SearchQuery, SearchResult, SearchResults } from '../search.js';
import { openFaissFolder, type FaissFolder, type OpenFaissFolderOptions } from './folder.js';

/**
 * The largest float32 strictly below x: faiss keeps only scores strictly past the radius, and a threshold keeps the
 * scores (float32) at it too — score > float32Below(x) ⇔ score ≥ x.
 */
export function float32Below(x: number): number {
  const f = new Float32Array([x]);
  if (f[0]! < x) return f[0]!;
  if (f[0] === 0) return -1.401298464324817e-45;
  const bits = new Int32Array(f.buffer);
  bits[0] = bits[0]! + (f[0]! > 0 ? -1 : 1);
  return f[0]!;
}

function float32Above(x: number): number {
  return -float32Below(-x);
}

/**
 * `where` on a faiss folder: refused, as filtering after the search would break a promise either way — a top-k
 * would return fewer rows than asked (or an unbounded over-fetch), a plan would read and test the metadata of
 * every candidate above its threshold (millions of rows at LAION scale) to keep a few.
 */
function whereRefused(where: string, folder: string) {
  return queryInvalid(
    `where ${JSON.stringify(where)} cannot be applied to the faiss index ${folder}: faiss has no metadata filter, ` +
      'and filtering its results afterwards would return fewer rows than asked (a top-k search) or read the ' +
      'metadata of every row above the threshold (a plan)',
    {
      hint:
        'Remove where and filter the samples on their metadata columns as they arrive, or build a clipstream ' +
        'index from the same embeddings (clipstream index --embeddings DIR --output DIR), whose where filters before ranking.',
    },
  );
}

export interface FaissBackend extends Index {
  folder: FaissFolder;
}

export async function openFaissBackend(folder: string, opts: OpenFaissFolderOptions = {}): Promise<FaissBackend> {
  const opened = await openFaissFolder(folder, opts);
  const { index, metadata } = opened;
  const ip = index.info.metric === 'inner_product';
  const similarity = (d: number) => (ip ? d : 1 - d / 2);

  /** `maxSimilarity`: only rows strictly below it (searchBelow). */
  async function neighbours(q: SearchQuery, limit: number, withVectors: boolean, maxSimilarity?: number) {
    const params = maxSimilarity === undefined ? {} : { below: ip ? maxSimilarity : 2 * (1 - maxSimilarity) };
    if (q.minSimilarity === undefined) {
      const found = withVectors
        ? await index.searchAndReconstruct(q.vector, limit, params)
        : (await index.search(q.vector, limit, params))[0]!;
      return { ...found, truncated: found.ids.length >= limit };
    }
    const radius = ip ? float32Below(q.minSimilarity) : float32Above(2 * (1 - q.minSimilarity));
    return index.rangeSearch(q.vector, radius, { ...params, maxResults: limit, reconstruct: withVectors });
  }

  const info: IndexSummary = {
    count: index.info.ntotal,
    dim: index.info.d,
    columns: metadata?.types ?? {},
    has_text: false,
    model: null,
  };
  function check(q: { where?: string; column?: string; vector: Float32Array }): void {
    if (q.where) throw whereRefused(q.where, folder);
    if ((q.column ?? 'vector') !== 'vector')
      throw queryInvalid(`the faiss index ${folder} is searched by its ${opts.modality ?? 'image'} embeddings only`);
    if (q.vector.length !== index.info.d) {
      throw queryInvalid(`the query has ${q.vector.length} dimensions but the index at ${folder} has ${index.info.d}`, {
        hint: 'Embed the query with the model that built the index.',
      });
    }
  }

  async function searchRows(q: SearchQuery, maxSimilarity?: number): Promise<SearchResults> {
    check(q);
    const limit = q.minSimilarity !== undefined ? (q.maxResults ?? 10_000) : (q.k ?? 10);
    const found = await neighbours(q, limit, q.nearDuplicate !== undefined, maxSimilarity);
    const rows = metadata ? await metadata.get(found.ids) : [];
    const out: SearchResults = [];
    out.truncated = found.truncated;
    const keep = await keptRows(
      found.ids.length,
      { urls: q.dedupUrls, nearDuplicate: q.nearDuplicate },
      (i) => (rows[i] as Record<string, unknown> | undefined)?.url,
      (i) => (found as { vectors?: Float32Array[] }).vectors![i]!,
    );
    for (const i of keep)
      out.push({
        ...(rows[i] ?? {}),
        id: found.ids[i]!,
        similarity: similarity(found.distances[i]!),
      } as SearchResult);
    return out;
  }

  return {
    folder: opened,
    info,
    async *searchBatches(q) {
      check(q);
      const radius = ip ? float32Below(q.minSimilarity) : float32Above(2 * (1 - q.minSimilarity));
      for await (const b of index.rangeBatches(q.vector, radius))
        yield { ids: b.ids, similarities: b.distances.map(similarity), progress: b.progress };
    },
    search: (q) => searchRows(q),
    searchBelow: (q, maxSimilarity) => searchRows(q, maxSimilarity),
    async vectorsOf(ids, column = 'vector') {
      if (column !== 'vector')
        throw queryInvalid(`the faiss index ${folder} holds its ${opts.modality ?? 'image'} embeddings only`);
      const found = await index.vectorsOf(ids);
      const missing = ids.find((id) => !found.has(id));
      if (!index.reconstructsAnyId && missing !== undefined)
        throw queryInvalid(
          `the faiss index ${folder} (${index.info.type}) cannot give row ${missing}'s embedding ("more like ` +
            `this"): an IVF index keeps each row's codes in one of its ${index.info.nlist} lists and has no id → ` +
            'list map, so it gives back only the rows its recent searches returned (finding any other means ' +
            'reading the ids of every list: the whole index)',
          { hint: "Search first and pick a row of the results, or search by the row's image URL or by text." },
        );
      return found;
    },
    async getByIds(ids) {
      if (!metadata) return [];
      const wanted = ids.filter((id) => Number.isSafeInteger(id) && id >= 0);
      const rows = await metadata.get(wanted);
      return wanted.flatMap((id, i) => (rows[i] ? [{ id, metadata: rows[i] }] : []));
    },
    close() {
      void opened.close();
    },
  };
}
