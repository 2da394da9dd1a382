/**
 * Opening a faiss index in place — a local file or an http(s) URL, one file or several index parts searched as one
 * — and the library API over it: search (top-k), rangeSearch (threshold), searchAndReconstruct, info, close.
 * Opening reads the trained structures (pre-transform, coarse quantizer, PQ codebooks, list offsets and sizes),
 * never the lists; list bytes go through a block cache bounded in bytes.
 */
import { basename, dirname, join } from 'node:path';
import { invalidOption } from '../../core/errors.js';
import { withBlockCache } from '../../io/block-cache.js';
import { isHttpUrl, openByteSource, readBytes, type ByteSource, type HttpSourceOptions } from '../../io/byte-source.js';
import { Cursor, faissFileInvalid } from './cursor.js';
import { Parser, type IndexNode, type IvfNode, type Metric, type Region } from './format.js';
import { describe, residentBytes } from './describe.js';
import type { ListPart } from './ivf.js';
import { RecentHits } from './recent-hits.js';
import { TreeSearcher, unwrap } from './searcher.js';

export interface FaissSearchParams {
  /** IVF lists probed. Default: the index file's (autofaiss saves its tuned value there). */
  nprobe?: number;
  /** HNSW search depth (an HNSW index, or an IVF's HNSW quantizer). Default: the index file's. */
  efSearch?: number;
  /**
   * Only results not as good as this value (IP: similarity < below; L2: distance > below): the rows under a
   * threshold, among those the search visits (probed lists, visited nodes). Not faiss's: ours.
   */
  below?: number;
}

export interface OpenFaissOptions extends FaissSearchParams {
  /** Bytes of list data (IVF: whole lists; Flat: blocks of its vectors) kept in memory between searches. Default 64 MiB. */
  cacheBytes?: number;
  /** Cache block size in bytes for a Flat index's vectors (block-cache.ts). Default 64 KiB. */
  blockBytes?: number;
  /** Lists read ahead of the scan, in parallel. Default 8. */
  listConcurrency?: number;
  http?: HttpSourceOptions;
}

export interface FaissIndexInfo {
  /** faiss factory-style description, e.g. "OPQ(LT 64→64),IVF256_HNSW32,PQ16x8". */
  type: string;
  /** Query dimension (before any pre-transform). */
  d: number;
  ntotal: number;
  /** inner_product: distances are similarities (higher is better); l2: squared distances (lower is better). */
  metric: Metric;
  nlist?: number;
  pqSubQuantizers?: number;
  /** Search parameters in effect (file, then open options). */
  nprobe?: number;
  efSearch?: number;
  /** Where the inverted lists live: in the index file(s), in an .ivfdata file, or nowhere (an empty IVF). */
  lists?: 'inline' | 'ondisk' | 'none';
  files: { name: string; bytes: number }[];
  bytesOnDisk: number;
  /** Bytes of the structures kept in memory for every search. */
  residentBytes: number;
}

export interface Neighbors {
  ids: number[];
  /** Inner products (IP indexes) or squared L2 distances, as faiss returns them. */
  distances: number[];
}

export interface FaissIndex {
  readonly info: FaissIndexInfo;
  /** Top-k neighbours of each query (queries: n × d floats, or one vector), best first; fewer when fewer exist. */
  search(queries: Float32Array, k: number, params?: FaissSearchParams): Promise<Neighbors[]>;
  /**
   * faiss's range_search for one query: every result strictly past `radius` (IP: similarity > radius; L2:
   * distance < radius) in the probed lists, best first, at most `maxResults` (default 10 000); `truncated` when
   * that limit was reached.
   */
  rangeSearch(
    query: Float32Array,
    radius: number,
    opts?: RangeOptions,
  ): Promise<Neighbors & { truncated: boolean; vectors?: Float32Array[] }>;
  /**
   * The same results as rangeSearch without its limit, streamed: in batches, in the order scanned (not sorted), so
   * that memory holds one batch whatever the number of results (a plan of millions of rows).
   */
  rangeBatches(
    query: Float32Array,
    radius: number,
    params?: FaissSearchParams,
  ): AsyncIterable<Neighbors & { progress?: { done: number; total: number } }>;
  /** Top-k of one query with each result's vector decoded from the index (PQ: c_L + residual), in query space. */
  searchAndReconstruct(
    query: Float32Array,
    k: number,
    params?: FaissSearchParams,
  ): Promise<Neighbors & { vectors: Float32Array[] }>;
  /**
   * Vectors of rows by id, in query space; unknown ids are left out. Flat and HNSW (through IDMaps) find any row;
   * an IVF index, which has no id → list map, only the rows its recent searches returned (RecentHits), decoded
   * from their codes as searchAndReconstruct does.
   */
  vectorsOf(ids: number[]): Promise<Map<number, Float32Array>>;
  /** vectorsOf finds any row (not an IVF index). */
  readonly reconstructsAnyId: boolean;
  close(): Promise<void>;
}

export interface RangeOptions extends FaissSearchParams {
  /** Default 10 000. */
  maxResults?: number;
  /** Also decode each result's vector (as searchAndReconstruct). */
  reconstruct?: boolean;
}

const DEFAULT_CACHE = 64 * 1024 * 1024;
const MAX_K = 1_000_000;

export async function openFaissIndex(pathOrUrl: string, opts: OpenFaissOptions = {}): Promise<FaissIndex> {
  return openFaissParts([pathOrUrl], opts);
}

/**
 * Index parts (autofaiss's distributed output, LAION's `index-parts/NN.index`) searched as one index: the parts
 * share their trained structures, so list L of the whole is list L of each part in turn — what faiss's
 * merge_ondisk would write. Trained structures are read from the first part; the others must carry the same bytes.
 */
export async function openFaissParts(paths: string[], opts: OpenFaissOptions = {}): Promise<FaissIndex> {
  if (paths.length === 0) throw invalidOption('Expected at least one index file but received none');
  const opened: ByteSource[] = [];
  try {
    const first = await parseFile(paths[0]!, opts, false, opened);
    const parts: ListPart[] = [];
    const extras: { node: IndexNode; regions: Region[]; source: ByteSource }[] = [];
    parts.push(...(await listParts(first.node, first.raw, paths[0]!, opts, opened)));
    for (const p of paths.slice(1)) {
      const part = await parseFile(p, opts, true, opened);
      extras.push(part);
      parts.push(...(await listParts(part.node, part.raw, p, opts, opened)));
    }
    await checkSameTraining(first, extras);
    return makeIndex(first.node, first.source, parts, paths, opened, opts);
  } catch (err) {
    await Promise.all(opened.map((s) => s.close().catch(() => {})));
    throw err;
  }
}

async function parseFile(pathOrUrl: string, opts: OpenFaissOptions, skim: boolean, opened: ByteSource[]) {
  const { source: raw } = await openByteSource(pathOrUrl, { http: opts.http });
  opened.push(raw);
  const parser = new Parser(new Cursor(raw), { skim });
  const node = await parser.index();
  const source = withBlockCache(raw, { maxBytes: opts.cacheBytes ?? DEFAULT_CACHE, blockBytes: opts.blockBytes });
  opened[opened.length - 1] = source;
  return { node, source, raw, regions: parser.regions };
}

/**
 * Where each list's bytes are: this file, or (ilod) the .ivfdata next to it. Uncached sources: the IVF caches whole
 * lists (list-cache.ts), so one list is one read (one HTTP request), with no block rounding.
 */
async function listParts(
  node: IndexNode,
  source: ByteSource,
  pathOrUrl: string,
  opts: OpenFaissOptions,
  opened: ByteSource[],
): Promise<ListPart[]> {
  const { core } = unwrap(node);
  if (core.kind !== 'ivf') return [];
  if (core.lists.kind !== 'ondisk') return [{ source, lists: core.lists }];
  // As faiss's IO_FLAG_ONDISK_SAME_DIR (how clip back opens populated.index): the stored name's base name, next to the index.
  const name = basename(core.lists.dataFile!.replace(/\\/g, '/'));
  const dataPath = isHttpUrl(pathOrUrl)
    ? new URL(encodeURIComponent(name), pathOrUrl).href
    : join(dirname(pathOrUrl), name);
  const { source: raw } = await openByteSource(dataPath, { http: opts.http }).catch((err: unknown) => {
    throw faissFileInvalid(
      `${pathOrUrl} keeps its lists in ${name}, which cannot be opened at ${dataPath}: ${(err as Error).message}`,
      'Put the .ivfdata file next to the index (clip-retrieval folders: image.index/merged_index.ivfdata beside populated.index).',
    );
  });
  const data = raw;
  opened.push(data);
  if (data.size < core.lists.totalSize!) {
    throw faissFileInvalid(
      `truncated: ${dataPath} is ${data.size} bytes but ${pathOrUrl} records ${core.lists.totalSize} bytes of lists`,
    );
  }
  return [{ source: data, lists: core.lists }];
}

/** Later parts must share the first part's trained structures: same shape, same bytes at both ends of each. */
async function checkSameTraining(
  first: { node: IndexNode; source: ByteSource; regions: Region[] },
  others: { node: IndexNode; regions: Region[]; source: ByteSource }[],
): Promise<void> {
  if (others.length === 0) return;
  const shape = (n: IndexNode) => `${describe(n)} d=${n.header.d} metric=${n.header.metric}`;
  const refRegions = first.regions;
  for (const other of others) {
    if (shape(other.node) !== shape(first.node) || other.regions.length !== refRegions.length) {
      throw faissFileInvalid(
        `${other.source.name} is not a part of the same index as ${first.source.name} (${shape(other.node)} vs ${shape(first.node)})`,
      );
    }
    for (let i = 0; i < other.regions.length; i++) {
      const a = refRegions[i]!;
      const b = other.regions[i]!;
      const sample = Math.min(4096, a.length);
      const same =
        a.length === b.length &&
        (await Promise.all([
          readBytes(first.source, a.offset, sample),
          readBytes(other.source, b.offset, sample),
          readBytes(first.source, a.offset + a.length - sample, sample),
          readBytes(other.source, b.offset + b.length - sample, sample),
        ]).then(([x, y, z, w]) => Buffer.compare(x!, y!) === 0 && Buffer.compare(z!, w!) === 0));
      if (!same) {
        throw faissFileInvalid(
          `${other.source.name} was trained apart from ${first.source.name} (their ${a.what} differ): not parts of one index`,
          'Index parts must come from one trained index (autofaiss distributed builds, LAION index-parts/).',
        );
      }
    }
  }
}

/** nprobe / efSearch in effect: options, else the file's (efSearch undefined when nothing uses HNSW). */
function searchDefaults(node: IndexNode, opts: FaissSearchParams) {
  const { core } = unwrap(node);
  const ivf: IvfNode | undefined = core.kind === 'ivf' ? core : undefined;
  const fileEfSearch =
    core.kind === 'hnsw'
      ? core.graph.efSearch
      : ivf?.quantizer.kind === 'hnsw'
        ? ivf.quantizer.graph.efSearch
        : undefined;
  const defaults = { nprobe: opts.nprobe ?? ivf?.nprobe ?? 1, efSearch: opts.efSearch ?? fileEfSearch ?? 16 };
  checkParams(defaults);
  return { ivf, defaults, usesHnsw: fileEfSearch !== undefined };
}

function indexInfo(
  node: IndexNode,
  parts: ListPart[],
  paths: string[],
  opened: ByteSource[],
  opts: FaissSearchParams,
): FaissIndexInfo {
  const { ivf, defaults, usesHnsw } = searchDefaults(node, opts);
  const listed = parts.reduce((sum, p) => sum + p.lists.sizes.reduce((a, b) => a + b, 0), 0);
  const files = opened.map((s) => ({ name: s.name, bytes: s.size }));
  return {
    type: describe(node),
    d: node.header.d,
    ntotal: paths.length > 1 ? listed : node.header.ntotal,
    metric: node.header.metric,
    nlist: ivf?.nlist,
    pqSubQuantizers: ivf?.pq?.M,
    nprobe: ivf ? defaults.nprobe : undefined,
    efSearch: usesHnsw ? defaults.efSearch : undefined,
    lists: ivf?.lists.kind,
    files,
    bytesOnDisk: files.reduce((sum, f) => sum + f.bytes, 0),
    residentBytes:
      residentBytes(node) +
      parts.reduce((sum, { lists: l }) => {
        const arrays = new Set([l.offsets, l.sizes, l.capacities]); // inline lists share sizes and capacities
        return sum + [...arrays].reduce((bytes, a) => bytes + a.byteLength, 0);
      }, 0),
  };
}

function makeIndex(
  node: IndexNode,
  source: ByteSource,
  parts: ListPart[],
  paths: string[],
  opened: ByteSource[],
  opts: OpenFaissOptions,
): FaissIndex {
  const searcher = new TreeSearcher(node, source, parts, opts.listConcurrency ?? 8, opts.cacheBytes ?? DEFAULT_CACHE);
  const { defaults } = searchDefaults(node, opts);
  const info = indexInfo(node, parts, paths, opened, opts);
  const settings = (k: number, params: FaissSearchParams = {}, radius?: number) => {
    const merged = { nprobe: params.nprobe ?? defaults.nprobe, efSearch: params.efSearch ?? defaults.efSearch };
    checkParams(merged);
    if (!Number.isSafeInteger(k) || k < 1 || k > MAX_K)
      throw invalidOption(`Expected k between 1 and ${MAX_K} but received ${k}`);
    if (params.below !== undefined && !Number.isFinite(params.below))
      throw invalidOption(`Expected a finite bound for below but received ${params.below}`);
    return { ...merged, k, radius, hnswK: radius === undefined ? k : 1, below: params.below };
  };
  // IVF: rows recent searches returned, whose vectors can then be decoded ("more like this")
  const recent = searcher.reconstructsIds ? undefined : new RecentHits();
  const checkQuery = (q: Float32Array, many: boolean) => {
    if (q.length === 0 || q.length % info.d !== 0 || (!many && q.length !== info.d)) {
      throw invalidOption(
        `Expected ${many ? 'a multiple of ' : ''}${info.d} floats for a query of this index but received ${q.length}`,
        {
          hint: 'Embed the query with the model that built the index.',
        },
      );
    }
    if (!q.every(Number.isFinite))
      throw invalidOption('Expected finite numbers in the query vector but received NaN or Infinity');
  };
  return {
    info,
    async search(queries, k, params) {
      checkQuery(queries, true);
      const s = settings(k, params);
      const out: Neighbors[] = [];
      for (let i = 0; i < queries.length; i += info.d) {
        const hits = await searcher.search(queries.subarray(i, i + info.d), s);
        recent?.remember(hits);
        out.push({ ids: hits.ids, distances: hits.distances });
      }
      return out;
    },
    async rangeSearch(query, radius, opt = {}) {
      checkQuery(query, false);
      if (!Number.isFinite(radius)) throw invalidOption(`Expected a finite radius but received ${radius}`);
      const hits = await searcher.search(query, settings(opt.maxResults ?? 10_000, opt, radius));
      recent?.remember(hits);
      const vectors = opt.reconstruct ? await searcher.reconstruct(hits.payloads) : undefined;
      return { ids: hits.ids, distances: hits.distances, truncated: hits.full, ...(vectors ? { vectors } : {}) };
    },
    rangeBatches(query, radius, params) {
      checkQuery(query, false);
      if (!Number.isFinite(radius)) throw invalidOption(`Expected a finite radius but received ${radius}`);
      return searcher.rangeBatches(query, radius, settings(1, params, radius));
    },
    async searchAndReconstruct(query, k, params) {
      checkQuery(query, false);
      const hits = await searcher.search(query, settings(k, params));
      recent?.remember(hits);
      return { ids: hits.ids, distances: hits.distances, vectors: await searcher.reconstruct(hits.payloads) };
    },
    async vectorsOf(ids) {
      if (!recent) return searcher.vectorsOfIds(ids);
      const out = new Map<number, Float32Array>();
      for (const id of ids) {
        const payload = recent.payloadOf(id);
        if (payload !== undefined) out.set(id, (await searcher.reconstruct([payload]))[0]!);
      }
      return out;
    },
    reconstructsAnyId: searcher.reconstructsIds,
    async close() {
      await Promise.all(opened.map((s) => s.close()));
    },
  };
}

function checkParams(p: { nprobe: number; efSearch: number }) {
  for (const [name, value] of Object.entries(p)) {
    if (!Number.isSafeInteger(value) || value < 1)
      throw invalidOption(`Expected a positive integer for ${name} but received ${value}`);
  }
}
