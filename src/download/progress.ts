import type { SampleRecord } from '../core/types.js';

/** How often a worker thread reports its counts. */
export const DELTA_INTERVAL_MS = 250;

/** What a worker reports every few hundred milliseconds, and what the counter adds up. */
export interface SampleDelta {
  successes: number;
  failedToDownload: number;
  failedToResize: number;
  reasons: Record<string, number>;
}

export function emptyDelta(): SampleDelta {
  return { successes: 0, failedToDownload: 0, failedToResize: 0, reasons: {} };
}

export function addToDelta(delta: SampleDelta, record: SampleRecord): void {
  if (record.status === 'success') delta.successes++;
  else if (record.status === 'failed_to_download') delta.failedToDownload++;
  else delta.failedToResize++;
  const reason = record.meta.reason;
  if (typeof reason === 'string') delta.reasons[reason] = (delta.reasons[reason] ?? 0) + 1;
}

export interface ProgressSnapshot {
  done: number;
  successes: number;
  failedToDownload: number;
  failedToResize: number;
  /** Rows this run has to process, once known (text inputs are counted in the background). */
  total: number | undefined;
  shardsDone: number;
  shardsSkipped: number;
  elapsedSeconds: number;
  /** Failure reasons, most frequent first. */
  reasons: Record<string, number>;
}

/** Counts what happened so far; the CLI renders it (a bar on a TTY, log lines otherwise). */
export class ProgressCounter {
  private readonly start = performance.now();
  private readonly counts = emptyDelta();
  private inputRows: number | undefined;
  private skippedRows = 0;
  private shardsDone = 0;
  private shardsSkipped = 0;

  add(delta: SampleDelta): void {
    this.counts.successes += delta.successes;
    this.counts.failedToDownload += delta.failedToDownload;
    this.counts.failedToResize += delta.failedToResize;
    for (const [reason, n] of Object.entries(delta.reasons)) {
      this.counts.reasons[reason] = (this.counts.reasons[reason] ?? 0) + n;
    }
  }

  shardDone(): void {
    this.shardsDone++;
  }

  shardSkipped(rows: number): void {
    this.shardsSkipped++;
    this.skippedRows += rows;
  }

  setInputRows(rows: number): void {
    this.inputRows = rows;
  }

  snapshot(): ProgressSnapshot {
    const c = this.counts;
    return {
      done: c.successes + c.failedToDownload + c.failedToResize,
      successes: c.successes,
      failedToDownload: c.failedToDownload,
      failedToResize: c.failedToResize,
      total: this.inputRows === undefined ? undefined : this.inputRows - this.skippedRows,
      shardsDone: this.shardsDone,
      shardsSkipped: this.shardsSkipped,
      elapsedSeconds: (performance.now() - this.start) / 1000,
      reasons: Object.fromEntries(Object.entries(c.reasons).sort((a, b) => b[1] - a[1])),
    };
  }
}
