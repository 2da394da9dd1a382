/** The server's JSON API (docs/server.md): the page uses nothing else. Errors carry the server's message and hint. */

export type {
  IndexInfo,
  PlanAnswer,
  PlannedQuery,
  Query,
  Row,
  SearchAnswer,
  ServerInfo,
  StartAnswer,
  ThresholdAnswer,
} from '../../src/server/wire';

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
