import { request } from 'undici';
import { indexInvalid, queryInvalid } from '../core/errors.js';
import { resultLimit, type SearchBackend, type SearchQuery, type SearchResult, type SearchResults } from './search.js';

export interface RemoteIndexOptions {
  /** e.g. http://host:1234/knn-service (the /metadata endpoint is found next to it). */
  url: string;
  indiceName: string;
  timeoutMs?: number;
}

/**
 * The search interface over a remote clip back (`clip back`, or `clipstream serve`): queries go as
 * `embedding_input`, thresholds are applied to the returned similarities. `where` cannot be sent over that API.
 */
export function openRemoteIndex(o: RemoteIndexOptions): SearchBackend {
  const knnUrl = o.url;
  const metadataUrl = knnUrl.replace(/\/knn-service\/?$/, '') + '/metadata';
  const timeout = o.timeoutMs ?? 30_000;

  async function post<T>(url: string, body: unknown): Promise<T> {
    let res;
    try {
      res = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
    } catch (err) {
      throw indexInvalid(`cannot reach the remote index at ${url}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const text = await res.body.text();
    if (res.statusCode === 400) {
      const message = (JSON.parse(text) as { error?: string }).error ?? text;
      throw queryInvalid(`the remote index at ${url} refused the query: ${message}`);
    }
    if (res.statusCode !== 200)
      throw indexInvalid(`the remote index at ${url} answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw indexInvalid(`the remote index at ${url} did not answer JSON`);
    }
  }

  async function search(q: SearchQuery): Promise<SearchResults> {
    if (q.where)
      throw queryInvalid(`where is not supported by a remote index (${knnUrl}): clip back's API has no filter`);
    const n = resultLimit(q);
    const results = await post<SearchResult[]>(knnUrl, {
      embedding_input: [...q.vector],
      modality: q.column === 'text_vector' ? 'text' : 'image',
      num_images: n,
      num_result_ids: n,
      indice_name: o.indiceName,
      deduplicate: q.nearDuplicate !== undefined,
      use_safety_model: false,
      use_violence_detector: false,
      aesthetic_score: '',
    });
    const seenUrls = new Set<unknown>();
    const last = results.at(-1);
    const truncated =
      results.length >= n &&
      (q.minSimilarity === undefined || (last !== undefined && last.similarity >= q.minSimilarity));
    const kept: SearchResults = results.filter((r) => {
      if (q.minSimilarity !== undefined && r.similarity < q.minSimilarity) return false;
      if (q.dedupUrls && r.url != null) {
        if (seenUrls.has(r.url)) return false;
        seenUrls.add(r.url);
      }
      return true;
    });
    kept.truncated = truncated;
    return kept;
  }

  return {
    search,
    getByIds: (ids) => post(metadataUrl, { indice_name: o.indiceName, ids }),
    close: () => {},
  };
}
