/**
 * clip back's `indices_paths.json`: `{name: folder}` or `{name: {indice_folder, …options}}`, with clip back's per-index
 * keys (its `dict_to_clip_options`). The keys that mean something here are used; those that do not (what clip back
 * loads that this server has no use for: hdf5 copies, a CLIP model per index, safety models, …) are accepted and
 * reported once; any other key is refused (a typo must not pass silently).
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { invalidOption } from '../core/errors.js';
import { localPathOf, parseOptions } from '../core/validation.js';
import { isHttpUrl } from '../io/byte-source.js';
import type { OpenIndexOptions } from '../index/open-backend.js';

export interface IndexEntry extends OpenIndexOptions {
  /** A local folder (absolute) or an http(s) URL. */
  location: string;
}

/** clip back's keys that have no meaning here, and why (said once per server, in its log). */
const WITHOUT_MEANING: Record<string, string> = {
  clip_model: 'queries are embedded by the model of --model',
  enable_hdf5: 'metadata is read in place from its parquet or arrow files',
  reorder_metadata_by_ivf_index: 'metadata is read in place in id order',
  enable_mclip_option: 'this server has no multilingual CLIP',
  use_jit: 'this server runs CLIP through ONNX',
  provide_safety_model: 'this server has no safety model (use_safety_model is skipped)',
  provide_violence_detector: 'this server has no violence detector (use_violence_detector is skipped)',
  provide_aesthetic_embeddings: 'this server has no aesthetic embeddings (aesthetic_score is skipped)',
};

const entrySchema = z
  .object({
    indice_folder: z.string().min(1),
    columns_to_return: z.array(z.string().min(1)).min(1).optional(),
    use_arrow: z.boolean().optional(),
    enable_faiss_memory_mapping: z.boolean().optional(),
    clip_model: z.string().optional(),
    enable_hdf5: z.boolean().optional(),
    reorder_metadata_by_ivf_index: z.boolean().optional(),
    enable_mclip_option: z.boolean().optional(),
    use_jit: z.boolean().optional(),
    provide_safety_model: z.boolean().optional(),
    provide_violence_detector: z.boolean().optional(),
    provide_aesthetic_embeddings: z.boolean().optional(),
  })
  .strict();

const fileSchema = z.record(
  z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'Expected a name of letters, digits, ., _ or - (1–64 characters)'),
  z.union([z.string().min(1), entrySchema]),
);

/**
 * The indexes of an indices_paths.json: folders relative to the file's folder, URLs as they are. `notes`: what was
 * accepted without effect, one line per key, for the server to print once.
 */
export async function readIndicesPaths(path: string): Promise<{ entries: Map<string, IndexEntry>; notes: string[] }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw invalidOption(`cannot read ${path} as JSON: ${(err as Error).message}`, {
      hint: 'clip back\'s indices_paths.json: {"name": "folder"} or {"name": {"indice_folder": "folder", …}}',
    });
  }
  const file = parseOptions(fileSchema, parsed, (p) => `${path}: ${p.join('.') || 'the file'}`, FILE_HINT);
  const entries = new Map<string, IndexEntry>();
  const unused = new Map<string, string[]>();
  for (const [name, value] of Object.entries(file)) {
    const entry = typeof value === 'string' ? { indice_folder: value } : value;
    const location = indexLocation(entry.indice_folder, `index ${name} in ${path}`, dirname(path));
    entries.set(name, {
      location,
      ...(entry.columns_to_return ? { columns: entry.columns_to_return } : {}),
      ...(entry.use_arrow ? { metadataFormat: 'arrow' as const } : {}),
    });
    for (const key of Object.keys(entry))
      if (key in WITHOUT_MEANING) unused.set(key, [...(unused.get(key) ?? []), name]);
    if (entry.enable_faiss_memory_mapping === false)
      unused.set('enable_faiss_memory_mapping: false', [
        ...(unused.get('enable_faiss_memory_mapping: false') ?? []),
        name,
      ]);
  }
  const notes = [...unused].map(([key, names]) => {
    const why = WITHOUT_MEANING[key] ?? 'faiss indexes are always read in place (as memory mapping does)';
    return `${path}: ${key} (${names.join(', ')}) accepted without effect: ${why}`;
  });
  return { entries, notes };
}

const FILE_HINT =
  "Keys of an index: indice_folder (required), columns_to_return, use_arrow, enable_faiss_memory_mapping and clip back's other options (see docs/server.md).";

/** A folder (relative to `base`) or an http(s) URL. */
export function indexLocation(value: string, what: string, base: string): string {
  const location = localPathOf(value, what, { urls: true });
  return isHttpUrl(location) || isAbsolute(location) ? location : resolve(base, location);
}

/** Whether two index locations name the same index: URLs compared as written (but a trailing slash), folders resolved. */
export function sameLocation(a: string, b: string): boolean {
  if (isHttpUrl(a) || isHttpUrl(b)) return a.replace(/\/+$/, '') === b.replace(/\/+$/, '');
  return resolve(a) === resolve(b);
}
