import cliProgress from 'cli-progress';
import type { ProgressCounter, ProgressSnapshot } from '../download/progress.js';

/** A bar on a TTY (samples/s, success rate, ETA); one log line every `intervalSeconds` otherwise. */
export function showProgress(counter: ProgressCounter, opts: { label: string; intervalSeconds?: number }): () => void {
  const stream = process.stderr;
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${opts.label} {bar} {value}/{totalText} | {rate}/s | ok {ok}% | ETA {etaText}`,
        hideCursor: true,
        stream,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(1, 0, fields(counter.snapshot()));
    const timer = setInterval(() => {
      const s = counter.snapshot();
      bar.setTotal(Math.max(s.total ?? s.done + 1, 1));
      bar.update(s.done, fields(s));
    }, 200);
    return () => {
      clearInterval(timer);
      const s = counter.snapshot();
      bar.setTotal(Math.max(s.done, 1));
      bar.update(s.done, fields(s));
      bar.stop();
    };
  }
  const interval = (opts.intervalSeconds ?? 10) * 1000;
  const timer = setInterval(() => stream.write(`${opts.label} ${line(counter.snapshot())}\n`), interval);
  timer.unref();
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    stream.write(`${opts.label} ${line(counter.snapshot())}\n`);
  };
}

function fields(s: ProgressSnapshot) {
  const rate = s.elapsedSeconds > 0 ? s.done / s.elapsedSeconds : 0;
  const eta = s.total !== undefined && rate > 0 ? Math.max(0, (s.total - s.done) / rate) : undefined;
  return {
    totalText: s.total === undefined ? '?' : String(s.total),
    rate: rate.toFixed(1),
    ok: s.done === 0 ? '-' : ((100 * s.successes) / s.done).toFixed(1),
    etaText: eta === undefined ? '?' : formatDuration(eta),
  };
}

export function line(s: ProgressSnapshot): string {
  const f = fields(s);
  return `${s.done}/${f.totalText} samples | ${f.rate} samples/s | success ${f.ok}% | shards ${s.shardsDone} done, ${s.shardsSkipped} skipped | ETA ${f.etaText}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}
