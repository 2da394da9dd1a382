import { createRequire } from 'node:module';

// cli-progress (16 modules) is loaded only for a terminal.
const loadCliProgress = () => createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');

/**
 * Progress of a job counted in items (rows, images): a bar with an ETA on a TTY when the total is known, a running
 * count when it is not, and a line every `intervalSeconds` off a TTY.
 */
export function countProgress(label: string, unit: string, { intervalSeconds = 5, totalKnown = true } = {}) {
  const start = performance.now();
  const rate = (done: number) => (done / Math.max((performance.now() - start) / 1000, 1e-3)).toFixed(1);
  if (process.stderr.isTTY) {
    const format = totalKnown
      ? `${label} {bar} {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted}`
      : `${label} {value} ${unit} | {rate} ${unit}/s`;
    const cliProgress = loadCliProgress();
    const bar = new cliProgress.SingleBar(
      { format, stream: process.stderr, hideCursor: true, fps: 5 },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done: number, total?: number) {
        if (!started) {
          bar.start(total ?? Number.MAX_SAFE_INTEGER, done, { rate: rate(done) });
          started = true;
        }
        if (total !== undefined) bar.setTotal(total);
        bar.update(done, { rate: rate(done) });
      },
      stop: () => started && bar.stop(),
    };
  }
  let last = performance.now();
  return {
    update(done: number, total?: number) {
      const now = performance.now();
      if (now - last < intervalSeconds * 1000 && done !== total) return;
      last = now;
      process.stderr.write(
        `${label} ${done}${total === undefined ? '' : `/${total}`} ${unit} | ${rate(done)} ${unit}/s\n`,
      );
    },
    stop: () => {},
  };
}
