import type { SampleRecord } from '../core/types.js';

/** `{shard}_stats.json`: img2dataset's fields (logger.py::write_stats) plus our `reason_dict`. */
export interface ShardStats {
  count: number;
  successes: number;
  failed_to_download: number;
  failed_to_resize: number;
  /** Seconds. */
  duration: number;
  /** Epoch seconds. */
  start_time: number;
  /** Epoch seconds. */
  end_time: number;
  /** error_message (or "success") → count. */
  status_dict: Record<string, number>;
  /** Failure reason code (`http_404`, `timeout`, …) → count; successes carry no reason. */
  reason_dict: Record<string, number>;
}

/** img2dataset's CappedCounter size. */
export const STATUS_DICT_CAP = 100_000;

/**
 * A counter of at most `cap` keys, like img2dataset's CappedCounter: when a new key arrives and the counter is
 * full, only the most common half (floor(cap / 2), ties by first appearance) is kept. Unlike img2dataset, adding to
 * a key that is already counted never trims.
 */
export class CappedCounter {
  private counts = new Map<string, number>();

  constructor(readonly cap: number = STATUS_DICT_CAP) {
    if (!Number.isInteger(cap) || cap < 2) throw new RangeError(`Expected an integer >= 2 for cap but received ${cap}`);
  }

  increment(key: string, by = 1): void {
    const current = this.counts.get(key);
    if (current === undefined && this.counts.size >= this.cap) this.keepMostCommon(Math.floor(this.cap / 2));
    this.counts.set(key, (current ?? 0) + by);
  }

  get size(): number {
    return this.counts.size;
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  private keepMostCommon(n: number): void {
    // Array.prototype.sort is stable: equal counts keep their insertion order, like Counter.most_common.
    const kept = [...this.counts].sort((a, b) => b[1] - a[1]).slice(0, n);
    this.counts = new Map(kept);
  }
}

export interface StatsCollectorOptions {
  /** Key cap of status_dict and reason_dict. Default 1e5 (img2dataset). */
  cap?: number;
  /** Clock in epoch milliseconds (tests inject one). */
  now?: () => number;
}

/** Counts a shard's records into a `ShardStats`. The clock starts at construction. */
export class StatsCollector {
  private readonly now: () => number;
  private readonly startMs: number;
  private count = 0;
  private successes = 0;
  private failedToDownload = 0;
  private failedToResize = 0;
  private readonly statusDict: CappedCounter;
  private readonly reasonDict: CappedCounter;

  constructor({ cap = STATUS_DICT_CAP, now = Date.now }: StatsCollectorOptions = {}) {
    this.now = now;
    this.startMs = now();
    this.statusDict = new CappedCounter(cap);
    this.reasonDict = new CappedCounter(cap);
  }

  add(record: SampleRecord): void {
    this.count += 1;
    if (record.status === 'success') {
      this.successes += 1;
      this.statusDict.increment('success');
      return;
    }
    if (record.status === 'failed_to_download') this.failedToDownload += 1;
    else this.failedToResize += 1;
    const message = record.meta.error_message;
    this.statusDict.increment(typeof message === 'string' && message !== '' ? message : record.status);
    const reason = record.meta.reason;
    if (typeof reason === 'string' && reason !== '') this.reasonDict.increment(reason);
  }

  finish(): ShardStats {
    const endMs = this.now();
    return {
      count: this.count,
      successes: this.successes,
      failed_to_download: this.failedToDownload,
      failed_to_resize: this.failedToResize,
      duration: (endMs - this.startMs) / 1000,
      start_time: this.startMs / 1000,
      end_time: endMs / 1000,
      status_dict: this.statusDict.toJSON(),
      reason_dict: this.reasonDict.toJSON(),
    };
  }
}
