/** Which failures are worth another attempt, and how long to wait before it. */
import type { FailureReason } from '../core/types.js';

/**
 * Timeouts, connection errors, temporary DNS failures, 5xx and 429 are retried; everything else (404, a host that
 * does not exist, opted_out, too_large…) is final.
 */
export function isRetryable(reason: FailureReason, status?: number, transient = false): boolean {
  if (reason === 'timeout' || reason === 'connection_error' || transient) return true;
  if (status === 429) return true;
  return status !== undefined && status >= 500 && status <= 599;
}

export const BACKOFF_BASE_MS = 200;
export const BACKOFF_MAX_MS = 10_000;

/** Jittered exponential backoff before attempt `attempt + 1`: 200 ms · 2^(attempt-1), ±25 %, at most 10 s. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1), BACKOFF_MAX_MS);
  return Math.round(base * (0.75 + 0.5 * random()));
}

/** Retry-After as ms from `now`: delta-seconds or an HTTP date. undefined when absent or unparseable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
