import { describe, expect, it } from 'vitest';
import { planProgress, progressLine } from '../../src/cli/plan-progress.js';

/** The reporter on a clock the test moves, writing into an array. */
function harness(isTTY: boolean) {
  let t = 0;
  const written: string[] = [];
  const progress = planProgress({ write: (s: string) => written.push(s), isTTY }, { intervalMs: 5000, now: () => t });
  return { progress, written, at: (ms: number) => (t = ms) };
}

describe('clipstream plan progress', () => {
  it('off a terminal: a line every interval while a stage runs, and one with its final figures when it ends', () => {
    const { progress, written, at } = harness(false);
    for (let list = 1; list <= 1024; list++) {
      at(list * 100); // a list every 100 ms: 102.4 s of search
      progress.update({ stage: 'search', query: 'cats', rows: list * 20_000, done: list, total: 1024 });
    }
    const searching = written.length;
    // a line each 5 s (lists 50, 100, … 1000): the search is seen moving, not one line per list
    expect(searching).toBe(20);
    expect(written[0]).toBe('plan: searching cats: 1,000,000 rows found, searched 50/1,024 (4 %), 5.0 s\n');
    expect(written[19]).toBe('plan: searching cats: 20,000,000 rows found, searched 1,000/1,024 (97 %), 100.0 s\n');
    at(103_000);
    progress.update({ stage: 'dedup', rows: 20_480_000, done: 1, total: 3 });
    // the search's last state is written when the next stage begins; the next stage's time counts from its end
    expect(written[searching]).toBe(
      'plan: searching cats: 20,480,000 rows found, searched 1,024/1,024 (100 %), 102.4 s\n',
    );
    at(104_000);
    progress.update({ stage: 'dedup', rows: 20_480_000, done: 3, total: 3 });
    at(110_000);
    progress.update({ stage: 'order', query: 'cats', rows: 5_000_000, done: 5_000_000, total: 6_000_000 });
    progress.stop(); // the writing stage's line was just written: not twice
    expect(written.slice(searching + 1)).toEqual([
      'plan: dedup across queries: 3/3 buckets (100 %), 20,480,000 rows, 1.6 s\n',
      'plan: writing cats: 5,000,000 candidates of at most 6,000,000 (83 %), 6.0 s\n',
    ]);
  });

  it('on a terminal: one line redrawn in place, ended by a newline when its stage ends', () => {
    const { progress, written, at } = harness(true);
    at(100);
    progress.update({ stage: 'search', query: 'dogs', rows: 10, done: 1, total: 4 });
    at(150);
    progress.update({ stage: 'search', query: 'dogs', rows: 20, done: 2, total: 4 }); // within 200 ms: not redrawn
    at(400);
    progress.update({ stage: 'search', query: 'dogs', rows: 30, done: 3, total: 4 });
    progress.stop();
    expect(written).toEqual([
      '\r\x1b[2Kplan: searching dogs: 10 rows found, searched 1/4 (25 %), 0.1 s',
      '\r\x1b[2Kplan: searching dogs: 30 rows found, searched 3/4 (75 %), 0.4 s',
      '\n',
    ]);
  });

  it('a search whose size is unknown (a scan without a total) counts rows found only', () => {
    expect(progressLine({ stage: 'search', query: 'q', rows: 1234 }, 2)).toBe(
      'plan: searching q: 1,234 rows found, 2.0 s',
    );
  });
});
