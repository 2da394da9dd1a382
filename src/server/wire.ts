/**
 * The JSON the page reads (web/src/api.ts, dashboard.tsx) from the server's API (src/server/web-api.ts,
 * web-spec.ts, events.ts): one set of types for both sides, and the server's handlers are typed with them. Types
 * only, and self-contained: the page's type check (web/tsconfig.json) reads this file without Node's types.
 */

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

/**
 * What one dashboard panel shows: a served stream, or a running `clipstream download`. Counters are totals since
 * the job started; the hub derives the rates from one reading to the next.
 */
export interface JobCounters {
  name: string;
  kind: 'stream' | 'download';
  /** Samples delivered (a stream) or written successfully (a download). */
  delivered: number;
  /** Samples the job will deliver, when known. */
  target: number | null;
  attempts: number;
  successes: number;
  failures: number;
  reasons: Record<string, number>;
  repeats: number | null;
  bytes: number | null;
  cache_hits: number | null;
  cache_misses: number | null;
  /** Stream: partitions open now; download: shards done and skipped (a queued run: also active, waiting, failed). */
  active_partitions?: number;
  shards?: { done: number; skipped: number; active?: number; waiting?: number; failed?: number };
  /** Stream: per query and partition, and the latest samples (src/server/stream-progress.ts). */
  progress?: StreamProgressSnapshot;
  /** A queued run's state (running, done, cancelled…): apart from the name, which keys the job's history. */
  state?: string;
}

export interface RatePoint {
  /** Seconds since the epoch. */
  t: number;
  samples_per_second: number;
  bytes_per_second: number | null;
}

/** `event: snapshot`, once a second. (`event: history` is `Record<job name, RatePoint[]>`.) */
export interface EventsSnapshot {
  /** Seconds since the epoch. */
  time: number;
  /** The server's resident memory, bytes. */
  rss: number;
  jobs: (JobCounters & { rate: RatePoint })[];
}

export interface StreamProgressSnapshot {
  /** The partition count of the latest readers (P), and how many of its partitions were seen. */
  partitions: number;
  partitions_seen: number;
  /** Per query (plan order), over the partitions seen: delivered in their epochs against the target (quota × P). */
  queries: QueryProgress[];
  /** The first partitions seen, by index: delivered per query. */
  per_partition: { p: number; epoch: number; delivered: number[] }[];
  /** The latest samples, newest last; their images are at /streams/NAME/recent/KEY. */
  recent: RecentSample[];
}

export interface QueryProgress {
  name: string;
  quota: number;
  target: number;
  delivered: number;
}

/** A delivered sample as the dashboard shows it; its image is kept while it is among the latest. */
export interface RecentSample {
  key: string;
  query: string;
  id: number | null;
  similarity: number | null;
  caption: string | null;
  partition: number;
  repeat: boolean;
  /** The image's format: jpg, png or webp. */
  format: string;
}
