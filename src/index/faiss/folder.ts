/**
 * A clip-retrieval / LAION index folder opened in place: the index (`image.index` file, `image.index/` holding
 * `populated.index` + `merged_index.ivfdata`, or `index-parts/*.index` searched as one), the autofaiss infos JSON
 * (`image.json`) and `metadata/` (parquet or Arrow), checked against each other: metadata rows must equal the
 * index's vectors, or rows would describe the wrong images.
 *
 * Over HTTP there is no listing, so files are found by the names these folders use: `image.index`, else
 * `image.index/populated.index`, else `index-parts/00.index`, `01.index`, … up to the first missing; metadata
 * `metadata/0_en.arrow`, `1_multi.arrow`, `2_nolang.arrow` or `0.arrow`, else `metadata/metadata_{N}.parquet`
 * numbered from 0 with the padding of the first found (none, 2, 3, 4 or 5 digits) up to the first missing.
 * Name them yourself with `metadataFiles` when a folder differs.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipstreamError, embeddingsMisaligned, inputNotFound } from '../../core/errors.js';
import { isHttpUrl, openByteSource, readBytes, type HttpSourceOptions } from '../../io/byte-source.js';
import { openMetadata, openMetadataFiles, type Metadata, type MetadataFormat } from './metadata.js';
import {
  openFaissIndex,
  openFaissParts,
  type FaissIndex,
  type FaissSearchParams,
  type OpenFaissOptions,
} from './open.js';

export interface OpenFaissFolderOptions extends OpenFaissOptions {
  /** Which embeddings: `image` (default) or `text` (text.index, text.json). */
  modality?: 'image' | 'text';
  /** Metadata columns returned (clip back's columns_to_return). Default: all. */
  columns?: string[];
  /** Metadata files in id order, when the folder's are not found by name (HTTP folders of other layouts). */
  metadataFiles?: string[];
  metadataFormat?: MetadataFormat;
  /** Open even when metadata rows and index vectors differ (for `index info`). Default false: refused. */
  allowMisaligned?: boolean;
}

export interface FaissFolder {
  index: FaissIndex;
  /** Undefined when the folder has no metadata. */
  metadata: Metadata | undefined;
  /** autofaiss's infos JSON (index_key, index_param, …), when present. */
  infos: Record<string, unknown> | undefined;
  /** Where the search parameters in effect came from. */
  paramsFrom: 'options' | 'infos' | 'index file';
  /** Metadata rows = index vectors (true when there is no metadata to disagree). */
  aligned: boolean;
  /** Why they disagree, naming counts and files. */
  misalignment: string | undefined;
  close(): Promise<void>;
}

type Exists = (relative: string) => Promise<boolean>;

export async function openFaissFolder(folder: string, opts: OpenFaissFolderOptions = {}): Promise<FaissFolder> {
  const http = isHttpUrl(folder);
  const base = http ? (folder.endsWith('/') ? folder : `${folder}/`) : folder;
  const at = (relative: string) => (http ? new URL(relative, base).href : join(base, relative));
  const exists: Exists = http
    ? (r) => urlExists(at(r), opts.http)
    : (r) =>
        stat(at(r)).then(
          () => true,
          () => false,
        );
  const modality = opts.modality ?? 'image';
  const infos = await readInfos(at(`${modality}.json`), http, opts.http);
  const fromInfos = infos ? parseParams(String(infos.index_param ?? '')) : {};
  const explicit = opts.nprobe !== undefined || opts.efSearch !== undefined;
  const params: FaissSearchParams = {
    ...fromInfos,
    ...dropUndefined({ nprobe: opts.nprobe, efSearch: opts.efSearch }),
  };
  const index = await openFolderIndex(folder, modality, at, exists, http, { ...opts, ...params });
  let metadata: Metadata | undefined;
  try {
    metadata = await openFolderMetadata(at, exists, http, opts);
    const misalignment =
      metadata && metadata.rows !== index.info.ntotal
        ? `${folder}: the metadata has ${metadata.rows} rows (${metadata.files.length} files, ${metadata.files[0]!.name} … ${metadata.files.at(-1)!.name}) but the index has ${index.info.ntotal} vectors`
        : undefined;
    if (misalignment && !opts.allowMisaligned) {
      throw embeddingsMisaligned(misalignment, {
        hint: 'Row i of the metadata (files in path order) must describe vector i: a missing or extra metadata file shifts every caption after it. Check the files against the embeddings the index was built from.',
      });
    }
    return {
      index,
      metadata,
      infos,
      paramsFrom: explicit ? 'options' : Object.keys(fromInfos).length > 0 ? 'infos' : 'index file',
      aligned: misalignment === undefined,
      misalignment,
      close: async () => {
        await Promise.all([index.close(), metadata?.close()]);
      },
    };
  } catch (err) {
    await Promise.all([index.close(), metadata?.close()]);
    throw err;
  }
}

async function openFolderIndex(
  folder: string,
  modality: string,
  at: (r: string) => string,
  exists: Exists,
  http: boolean,
  opts: OpenFaissOptions,
): Promise<FaissIndex> {
  const name = `${modality}.index`;
  if (http) {
    if (await exists(name)) return openFaissIndex(at(name), opts);
    if (await exists(`${name}/populated.index`)) return openFaissIndex(at(`${name}/populated.index`), opts);
  } else {
    const info = await stat(at(name)).catch(() => undefined);
    if (info?.isFile()) return openFaissIndex(at(name), opts);
    if (info?.isDirectory()) return openFaissIndex(at(`${name}/populated.index`), opts);
  }
  const parts = await listParts(at, exists, http);
  if (parts.length > 0) return openFaissParts(parts, opts);
  throw inputNotFound(
    `no faiss index in ${folder}: expected ${name} (a file, or a folder holding populated.index) or index-parts/*.index`,
    {
      hint: 'Point at a clip-retrieval / LAION index folder.',
    },
  );
}

async function listParts(at: (r: string) => string, exists: Exists, http: boolean): Promise<string[]> {
  if (!http) {
    const names = await readdir(at('index-parts')).catch(() => [] as string[]);
    return names
      .filter((n) => n.endsWith('.index'))
      .sort()
      .map((n) => at(`index-parts/${n}`));
  }
  const parts: string[] = [];
  while (parts.length < 10_000 && (await exists(`index-parts/${String(parts.length).padStart(2, '0')}.index`))) {
    parts.push(at(`index-parts/${String(parts.length).padStart(2, '0')}.index`));
  }
  return parts;
}

const ARROW_NAMES = [['0_en.arrow', '1_multi.arrow', '2_nolang.arrow'], ['0.arrow']];

async function openFolderMetadata(
  at: (r: string) => string,
  exists: Exists,
  http: boolean,
  opts: OpenFaissFolderOptions,
): Promise<Metadata | undefined> {
  const common = { columns: opts.columns, http: opts.http };
  if (opts.metadataFiles)
    return openMetadataFiles(
      opts.metadataFiles,
      opts.metadataFormat ?? (opts.metadataFiles.some((f) => /\.arrow$/i.test(f)) ? 'arrow' : 'parquet'),
      common,
    );
  if (!http) {
    const info = await stat(at('metadata')).catch(() => undefined);
    return info?.isDirectory() ? openMetadata(at('metadata'), { ...common, format: opts.metadataFormat }) : undefined;
  }
  for (const names of ARROW_NAMES) {
    const found: string[] = [];
    for (const n of names) if (await exists(`metadata/${n}`)) found.push(at(`metadata/${n}`));
    if (found.length > 0 && opts.metadataFormat !== 'parquet') return openMetadataFiles(found, 'arrow', common);
  }
  for (const width of [0, 2, 3, 4, 5]) {
    const name = (i: number) => `metadata/metadata_${String(i).padStart(width, '0')}.parquet`;
    if (!(await exists(name(0)))) continue;
    const files: string[] = [];
    while (files.length < 100_000 && (await exists(name(files.length)))) files.push(at(name(files.length)));
    return openMetadataFiles(files, 'parquet', common);
  }
  return undefined;
}

async function urlExists(url: string, http: HttpSourceOptions | undefined): Promise<boolean> {
  try {
    const { source } = await openByteSource(url, { probe: 1, http });
    await source.close();
    return true;
  } catch (err) {
    if (err instanceof ClipstreamError && err.code === 'INPUT_NOT_FOUND' && /HTTP 40[34]|HTTP 410/.test(err.message))
      return false;
    throw err;
  }
}

async function readInfos(
  path: string,
  http: boolean,
  opts: HttpSourceOptions | undefined,
): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    if (http) {
      const { source } = await openByteSource(path, { http: opts });
      try {
        if (source.size > 1 << 20) return undefined; // not an infos JSON (they are a few hundred bytes)
        text = Buffer.from(await readBytes(source, 0, source.size)).toString('utf8');
      } finally {
        await source.close();
      }
    } else {
      text = await readFile(path, 'utf8');
    }
  } catch {
    return undefined;
  }
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** faiss's ParameterSpace string ("nprobe=16,efSearch=32,ht=2048"): the parameters this reader uses. */
export function parseParams(text: string): FaissSearchParams {
  const out: FaissSearchParams = {};
  for (const token of text.split(/[ ,]+/)) {
    const [name, value] = token.split('=');
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1) continue;
    if (name === 'nprobe') out.nprobe = n;
    if (name === 'efSearch') out.efSearch = n;
  }
  return out;
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
