/** The server's JSON API (docs/server.md): the page uses nothing else. Errors carry the server's message and hint. */

export interface IndexInfo {
  name: string;
  location: string | null;
  count: number;
  dim: number;
  columns: Record<string, string>;
  has_text: boolean;
  model: string | null;
}

export interface ServerInfo {
  indices: IndexInfo[];
  model: { name: string; location: string | null } | null;
  streams: string[];
  allow_new_streams: boolean;
  limits: { results: number };
}

export interface Row {
  id: number;
  similarity: number;
  url?: string;
  caption?: string | null;
  [column: string]: unknown;
}

/** Exactly one of these: what the user searched by. */
export type Query =
  { text: string } | { image: string } | { image_url: string } | { embedding: number[] } | { like: number };

export interface SearchAnswer {
  results: Row[];
  truncated: boolean;
  vector: number[];
}

export interface ThresholdAnswer {
  count: number;
  more: boolean;
  min_similarity: number;
  above: Row[];
  below: Row[];
}

export interface PlannedQuery {
  name: string;
  requested: number;
  available: number;
  available_more: boolean;
  planned: number;
  quota: number;
  delivered: number;
}

export interface PlanAnswer {
  id: string;
  partitions: number;
  queries: PlannedQuery[];
  per_partition: number;
  total: number;
  warnings: string[];
  overlap?: { name: string; rows: number; rows_more: boolean; shared: number; with: Record<string, number> }[];
}

export interface StartAnswer extends PlanAnswer {
  name: string;
  url: string;
  python: string;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

async function answer<T>(res: Response): Promise<T> {
  const body = (await res.json().catch(() => null)) as { error?: string; code?: string; hint?: string } | null;
  if (!res.ok) throw new ApiError(body?.error ?? `HTTP ${res.status}`, res.status, body?.code ?? 'HTTP', body?.hint);
  return body as T;
}

export const getJson = async <T>(path: string): Promise<T> =>
  answer<T>(await fetch(path, { credentials: 'same-origin' }));

export const postJson = async <T>(path: string, body: unknown): Promise<T> =>
  answer<T>(
    await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
  );

/** "message — hint", as a person reads it. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) return err.hint ? `${err.message} — ${err.hint}` : err.message;
  return err instanceof Error ? err.message : String(err);
}

export const thumbUrl = (index: string, id: number) => `/thumbs/${encodeURIComponent(index)}/${id}.jpg`;
