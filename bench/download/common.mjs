import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));

/** Starts bench/download/server.mjs in a child process; resolves with its base URL. */
export async function startBenchServer({ hostile = false } = {}) {
  const script = fileURLToPath(new URL('./server.mjs', import.meta.url));
  const child = spawn(process.execPath, [script, ...(hostile ? ['--hostile'] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  });
  const { port, meanBytes } = JSON.parse(line);
  return {
    url: `http://127.0.0.1:${port}`,
    meanBytes,
    cpuSeconds: () => cpuSecondsOf(child.pid),
    stop: () => child.kill('SIGTERM'),
  };
}

/** utime + stime of a live process (all its threads), in seconds; 0 once it is gone. */
export function cpuSecondsOf(pid) {
  try {
    // fields after the command's closing parenthesis: state is field 3, utime 14, stime 15
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
const CLOCK_TICKS = 100;

/**
 * Runs a command, returns wall seconds, peak RSS (KB) and CPU seconds (all threads), read from /proc every 100 ms
 * while it runs (the last 100 ms of CPU may be missed). `rssOfChild`: peak RSS of the command's first child.
 */
export function timed(cmd, args, opts = {}) {
  const { rssOfChild = false, ...spawnOpts } = opts;
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOpts });
    let out = '';
    let stderr = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      out += d;
      stderr += d;
    });
    let peakKb = 0;
    let cpuSeconds = 0;
    const poll = setInterval(async () => {
      cpuSeconds = Math.max(cpuSeconds, cpuSecondsOf(child.pid));
      try {
        const { readFile } = await import('node:fs/promises');
        // rssOfChild: the command is a wrapper (bash for `times`); the peak that matters is its child's
        const pid = rssOfChild
          ? (await readFile(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')).split(' ')[0]
          : child.pid;
        const status = await readFile(`/proc/${pid}/status`, 'utf8');
        const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
        peakKb = Math.max(peakKb, hwm);
      } catch {
        /* process gone */
      }
    }, 100);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      resolve({ code, seconds: (performance.now() - start) / 1000, output: out, stderr, peakKb, cpuSeconds });
    });
  });
}

export function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}
