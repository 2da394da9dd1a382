/** Live counters of a stream (all its partitions): what `GET /streams/NAME/stats` and /metrics report. */
export interface StreamStatsSnapshot {
  delivered: number;
  repeats: number;
  /** Attempts that finished: successes + failures (cache hits included; an attempt abandoned by its reader is not one). */
  attempts: number;
  /** Attempts under way now. */
  in_flight: number;
  successes: number;
  failures: number;
  /** Failure reason → count. */
  reasons: Record<string, number>;
  /** Encoded image bytes delivered. */
  bytes: number;
  cache_hits: number;
  cache_misses: number;
  /** Partitions being streamed right now. */
  active_partitions: number;
  started_at: string;
  samples_per_second: number;
  success_rate: number | null;
}

export class StreamStats {
  delivered = 0;
  repeats = 0;
  inFlight = 0;
  successes = 0;
  failures = 0;
  bytes = 0;
  cacheHits = 0;
  cacheMisses = 0;
  activePartitions = 0;
  readonly reasons = new Map<string, number>();
  private readonly start = Date.now();

  /** Derived: every finished attempt ended as a success or a failure. */
  get attempts(): number {
    return this.successes + this.failures;
  }

  fail(reason: string): void {
    this.failures++;
    // Bounded: reasons are stable codes, but http_NNN could in principle take ~500 values.
    if (this.reasons.has(reason) || this.reasons.size < 200)
      this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
  }

  snapshot(): StreamStatsSnapshot {
    const seconds = Math.max(1e-3, (Date.now() - this.start) / 1000);
    return {
      delivered: this.delivered,
      repeats: this.repeats,
      attempts: this.attempts,
      in_flight: this.inFlight,
      successes: this.successes,
      failures: this.failures,
      reasons: Object.fromEntries([...this.reasons].sort((a, b) => b[1] - a[1])),
      bytes: this.bytes,
      cache_hits: this.cacheHits,
      cache_misses: this.cacheMisses,
      active_partitions: this.activePartitions,
      started_at: new Date(this.start).toISOString(),
      samples_per_second: Math.round((this.delivered / seconds) * 100) / 100,
      success_rate: this.attempts === 0 ? null : Math.round((this.successes / this.attempts) * 10_000) / 10_000,
    };
  }
}
