/**
 * The one way to open an index, whatever it is: the kind is detected from what is there. A folder with
 * `clipstream.json` is a clipstream (LanceDB) index; a folder or an http(s) URL with `image.index` (a file, or a
 * folder holding populated.index), or `index-parts/`, is a clip-retrieval / LAION faiss folder; a spec's
 * `{url, indice_name}` is a remote clip back. plan, query, serve and the page hold the result without knowing
 * which it is.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { indexInvalid, inputNotFound, missingColumn, queryInvalid } from '../core/errors.js';
import { isHttpUrl } from '../io/byte-source.js';
import { openFaissBackend, type FaissBackend } from './faiss/backend.js';
import type { OpenFaissFolderOptions } from './faiss/folder.js';
import { INFO_FILE } from './info.js';
import { openRemoteIndex } from './remote.js';
import {
  openIndex,
  type Index,
  type SearchBackend,
  type SearchQuery,
  type SearchResult,
  type SearchResults,
} from './search.js';

export type IndexKind = 'clipstream' | 'faiss' | 'remote';

/** A spec's `index:`: a folder path or URL, or a remote clip back. */
export type IndexLocation = string | { url: string; indice_name: string };

/** Identifies the index a plan was made from, so that a plan is never streamed against another one. */
export interface IndexIdentity {
  location: IndexLocation;
  count: number | null;
  dim: number | null;
  created_at: string | null;
}

export interface OpenIndexOptions {
  /** faiss folders: metadata columns returned (clip back's `columns_to_return`). Default: all. */
  columns?: string[];
  /** faiss folders: which metadata files to read when a folder holds both kinds (clip back's `use_arrow`). */
  metadataFormat?: 'parquet' | 'arrow';
}

export interface OpenedIndex {
  index: Index;
  kind: Exclude<IndexKind, 'remote'>;
  identity: IndexIdentity;
}

const FAISS_NAMES = ['image.index', 'index-parts'];

/** Which kind of index a local folder holds; a URL is taken for a faiss folder (its files are found by name). */
export async function indexKindAt(location: string): Promise<Exclude<IndexKind, 'remote'>> {
  if (isHttpUrl(location)) return 'faiss';
  const here = await stat(location).catch(() => undefined);
  if (!here) throw inputNotFound(`no index at ${location}`, { hint: FOLDER_HINT });
  if (!here.isDirectory()) throw indexInvalid(`${location} is a file, not an index folder`, { hint: FOLDER_HINT });
  if (await exists(join(location, INFO_FILE))) return 'clipstream';
  for (const name of FAISS_NAMES) if (await exists(join(location, name))) return 'faiss';
  throw indexInvalid(
    `${location} is not an index folder: it has no ${INFO_FILE} (clipstream index) and no image.index or index-parts/ (clip-retrieval / LAION faiss index)`,
    { hint: FOLDER_HINT },
  );
}

const FOLDER_HINT =
  'Point at a folder made by `clipstream index`, or at a clip-retrieval / LAION index folder (image.index + metadata/), locally or over http(s).';

/** An index folder or URL, opened as its kind asks. */
export async function openIndexAt(location: string, opts: OpenIndexOptions = {}): Promise<OpenedIndex> {
  const kind = await indexKindAt(location);
  if (kind === 'clipstream') {
    const lance = await openIndex(location);
    const { count, dim, created_at } = lance.info;
    const index = opts.columns ? withColumns(lance, opts.columns, location) : lance;
    return { index, kind, identity: { location, count, dim, created_at } };
  }
  const index = await openFaissFolderIndex(location, opts);
  return { index, kind, identity: { location, count: index.info.count, dim: index.info.dim, created_at: null } };
}

/** A spec's index: a folder or URL (openIndexAt), or a remote clip back. */
export async function openSearchBackend(
  location: IndexLocation,
  opts: OpenIndexOptions = {},
): Promise<{ backend: SearchBackend; kind: IndexKind; identity: IndexIdentity; columns: string[] | null }> {
  if (typeof location !== 'string') {
    const backend = openRemoteIndex({ url: location.url, indiceName: location.indice_name });
    return { backend, kind: 'remote', identity: { location, count: null, dim: null, created_at: null }, columns: null };
  }
  const { index, kind, identity } = await openIndexAt(location, opts);
  return { backend: index, kind, identity, columns: Object.keys(index.info.columns) };
}

/** The index with only `columns` of its metadata in results and rows (clip back's `columns_to_return`). */
function withColumns(index: Index, columns: string[], location: string): Index {
  const unknown = columns.filter((c) => !(c in index.info.columns));
  if (unknown.length > 0) {
    index.close();
    throw missingColumn(
      `columns_to_return: the index ${location} has no column ${unknown.map((c) => JSON.stringify(c)).join(', ')}; it has ${Object.keys(index.info.columns).join(', ')}`,
    );
  }
  const keep = (row: Record<string, unknown>, always: string[]) =>
    Object.fromEntries(Object.entries(row).filter(([k]) => always.includes(k) || columns.includes(k)));
  const kept = (results: SearchResults): SearchResults =>
    Object.assign(
      results.map((r) => keep(r, ['id', 'similarity']) as SearchResult),
      { truncated: results.truncated },
    );
  return {
    ...index,
    info: { ...index.info, columns: keep(index.info.columns, []) as Index['info']['columns'] },
    search: async (q) => kept(await index.search(q)),
    ...(index.searchBelow && {
      searchBelow: async (q: SearchQuery, max: number) => kept(await index.searchBelow!(q, max)),
    }),
    async getByIds(ids) {
      return (await index.getByIds(ids)).map((r) => ({ id: r.id, metadata: keep(r.metadata, []) }));
    },
  };
}

/**
 * A faiss folder as an Index: the image index, and its text index (`text.index`, clip-retrieval's caption
 * embeddings) opened the first time a search asks for `text_vector`.
 */
async function openFaissFolderIndex(location: string, opts: OpenIndexOptions): Promise<Index> {
  const folderOptions: OpenFaissFolderOptions = { columns: opts.columns, metadataFormat: opts.metadataFormat };
  const image = await openFaissBackend(location, folderOptions);
  const hasText = await textIndexExists(location);
  let text: Promise<FaissBackend> | undefined;
  const textBackend = () => (text ??= openFaissBackend(location, { ...folderOptions, modality: 'text' }));
  return {
    info: { ...image.info, has_text: hasText },
    async search(q) {
      if ((q.column ?? 'vector') === 'vector') return image.search(q);
      if (!hasText)
        throw queryInvalid(`the faiss index ${location} has no text.index (caption embeddings)`, {
          hint: 'Search the image embeddings instead.',
        });
      return (await textBackend()).search({ ...q, column: 'vector' });
    },
    async searchBelow(q, maxSimilarity) {
      if ((q.column ?? 'vector') === 'vector') return image.searchBelow!(q, maxSimilarity);
      if (!hasText) throw queryInvalid(`the faiss index ${location} has no text.index (caption embeddings)`);
      return (await textBackend()).searchBelow!({ ...q, column: 'vector' }, maxSimilarity);
    },
    async *searchBatches(q) {
      if ((q.column ?? 'vector') === 'vector') yield* image.searchBatches!(q);
      else {
        if (!hasText) throw queryInvalid(`the faiss index ${location} has no text.index (caption embeddings)`);
        yield* (await textBackend()).searchBatches!({ ...q, column: 'vector' });
      }
    },
    getByIds: (ids) => image.getByIds(ids),
    async vectorsOf(ids, column = 'vector') {
      if (column === 'vector') return image.vectorsOf!(ids);
      if (!hasText) throw queryInvalid(`the faiss index ${location} has no text.index (caption embeddings)`);
      return (await textBackend()).vectorsOf!(ids);
    },
    close() {
      image.close();
      void text?.then(
        (t) => t.close(),
        () => {},
      );
    },
  };
}

async function textIndexExists(location: string): Promise<boolean> {
  if (isHttpUrl(location)) return false; // not probed over HTTP (LAION's folders have none): one request less
  return exists(join(location, 'text.index'));
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );
