import type { PlanProgress } from '../select/long-search.js';

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface PlanProgressOptions {
  /** Off a terminal, a line at most this often while a stage runs (and one when it ends). Default 5 s. */
  intervalMs?: number;
  now?: () => number;
}

/** A terminal's line is redrawn at most this often. */
const TTY_REDRAW_MS = 200;

const count = (n: number) => n.toLocaleString('en-US');

/** One stage's state, as a line: what it does, how far, rows found, time since it began. */
export function progressLine(p: PlanProgress, seconds: number): string {
  const of = p.total === undefined ? '' : `/${count(p.total)}`;
  const pct = p.total ? ` (${Math.floor((100 * (p.done ?? 0)) / p.total)} %)` : '';
  const time = `${seconds.toFixed(1)} s`;
  if (p.stage === 'search') {
    const searched = p.done === undefined ? '' : `, searched ${count(p.done)}${of}${pct}`;
    return `plan: searching ${p.query}: ${count(p.rows)} rows found${searched}, ${time}`;
  }
  if (p.stage === 'dedup')
    return `plan: dedup across queries: ${count(p.done ?? 0)}${of} buckets${pct}, ${count(p.rows)} rows, ${time}`;
  const most = p.total === undefined ? '' : ` of at most ${count(p.total)}${pct}`;
  return `plan: writing ${p.query}: ${count(p.done ?? p.rows)} candidates${most}, ${time}`;
}

/**
 * What a long plan is doing, on stderr: per stage (searching a query, dedup across queries, writing a query's
 * candidates) the rows found, how far (lists or rows searched, buckets, candidates written) and the time. On a
 * terminal one line redrawn in place; otherwise (a log, a pipe) a line every `intervalMs` while a stage runs and
 * one with its final figures when it ends, so that a short plan logs each stage once and a long one shows it moves.
 */
export function planProgress(out: ProgressOutput = process.stderr, opts: PlanProgressOptions = {}) {
  const now = opts.now ?? (() => performance.now());
  const interval = out.isTTY ? TTY_REDRAW_MS : (opts.intervalMs ?? 5000);
  // A stage begins when the one before it made its last report (the first: when planning began); a stage's time
  // runs to its own last report.
  let began = now();
  let current: { key: string; last: PlanProgress; lastAt: number; shownAt: number } | undefined;
  const show = (final: boolean) => {
    const line = progressLine(current!.last, (current!.lastAt - began) / 1000);
    out.write(out.isTTY ? `\r\x1b[2K${line}${final ? '\n' : ''}` : `${line}\n`);
    current!.shownAt = current!.lastAt;
  };
  const end = () => {
    if (!current) return;
    if (current.shownAt !== current.lastAt) show(true);
    else if (out.isTTY) out.write('\n'); // its last state is drawn already
    began = current.lastAt;
    current = undefined;
  };
  return {
    update(p: PlanProgress) {
      const key = `${p.stage}:${p.query ?? ''}`;
      if (current && current.key !== key) end();
      // On a terminal the first report is drawn at once; in a log the first line comes after an interval.
      current ??= { key, last: p, lastAt: now(), shownAt: out.isTTY ? -Infinity : began };
      current.last = p;
      current.lastAt = now();
      if (current.lastAt - current.shownAt >= interval) show(false);
    },
    /** The last stage's final line. */
    stop: end,
  };
}
