import { Document, visit, isSeq } from 'yaml';
import type { ServerInfo } from './api';

/** A query the user added from the explorer: how it was searched, and the numbers picked for it. */
export interface DraftQuery {
  name: string;
  /** A text query stays text; an image, image URL or row becomes the embedding the server used. */
  source: { text: string } | { embedding: number[] };
  count: number;
  min_similarity: number;
  weight?: number;
  where?: string;
}

export interface DraftSpec {
  index: string;
  queries: DraftQuery[];
  nearDuplicate: boolean;
  image: { size: number; resize_mode: string; encode_format: string };
  allowPrivateNetworks: boolean;
  seed: number;
}

export const RESIZE_MODES = ['center_crop', 'border', 'keep_ratio', 'keep_ratio_largest', 'no'];
export const ENCODE_FORMATS = ['jpg', 'png', 'webp', 'npy'];
/** clip back's and the explorer's near-duplicate threshold. */
export const NEAR_DUPLICATE = 0.94;

export const emptySpec = (index: string): DraftSpec => ({
  index,
  queries: [],
  nearDuplicate: false,
  image: { size: 256, resize_mode: 'center_crop', encode_format: 'jpg' },
  allowPrivateNetworks: false,
  seed: 0,
});

/**
 * The spec file as `clipstream plan` reads it (docs/spec.md): the index and model by their folders on the server,
 * only the fields the user set (the rest keep their defaults).
 */
export function specObject(draft: DraftSpec, info: ServerInfo): Record<string, unknown> {
  const index = info.indices.find((i) => i.name === draft.index);
  const needsModel = draft.queries.some((q) => 'text' in q.source);
  return {
    index: index?.location ?? draft.index,
    ...(needsModel && info.model?.location ? { model: info.model.location } : {}),
    queries: draft.queries.map((q) => ({
      name: q.name,
      ...q.source,
      count: q.count,
      min_similarity: q.min_similarity,
      ...(q.where ? { where: q.where } : {}),
      ...(q.weight !== undefined ? { weight: q.weight } : {}),
    })),
    ...(draft.nearDuplicate ? { dedup: { near_duplicate: NEAR_DUPLICATE } } : {}),
    seed: draft.seed,
    image: draft.image,
    ...(draft.allowPrivateNetworks ? { fetch: { allow_private_networks: true } } : {}),
  };
}

/** YAML of the spec; an embedding is written on one line (a block list would take a line per number). */
export function specYaml(spec: Record<string, unknown>): string {
  const doc = new Document(spec);
  visit(doc, {
    Pair(_, pair) {
      const key = (pair.key as { value?: unknown } | null)?.value;
      if (key === 'embedding' && isSeq(pair.value)) pair.value.flow = true;
    },
  });
  return `# clipstream spec, made on the page of clipstream serve: clipstream plan spec.yaml --output plan/\n${doc.toString({ lineWidth: 0 })}`;
}

/** A query name from what was searched: letters, digits, _ and - (the spec's rule). */
export function queryName(label: string, taken: string[]): string {
  const base =
    label
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40) || 'query';
  let name = base;
  for (let i = 2; taken.includes(name); i++) name = `${base}-${i}`;
  return name;
}
