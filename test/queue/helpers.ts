import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ImageServer } from '../helpers/image-server.js';
import { readTarSamples } from '../../src/io/tar-read.js';

/** The built CLI, run as users run it (npm test builds first). */
export const cli = resolve('dist/cli/main.js');

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function run(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 120_000): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}

/** A `clipstream worker` process; its stderr is kept for assertions and failures. */
export interface WorkerProcess {
  child: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
}

export function startWorker(queue: string, name: string, extra: string[] = [], env = process.env): WorkerProcess {
  const child = spawn(
    process.execPath,
    [cli, 'worker', '--queue', queue, '--name', name, '--lock-duration', '2', ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'], env },
  );
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, log: () => log, exited };
}

export async function stopWorkers(workers: WorkerProcess[]): Promise<void> {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  await Promise.all(workers.map((w) => w.exited));
}

/** A csv of `n` image urls (every 9th a 404), captioned by row. */
export async function writeList(dir: string, images: ImageServer, n: number, name = 'urls.csv'): Promise<string> {
  const rows = Array.from({ length: n }, (_, i) =>
    i % 9 === 4 ? `${images.url}/status/404,row ${i}` : `${images.url}/img/${30 + (i % 40)}x24.jpg,row ${i}`,
  );
  const path = join(dir, name);
  await writeFile(path, ['url,caption', ...rows].join('\n') + '\n');
  return path;
}

/** The flags both a single-machine and a queued download of these tests use. */
export const downloadFlags = (list: string, out: string, perShard = 10) => [
  'download',
  '--url-list',
  list,
  '--input-format',
  'csv',
  '--caption-col',
  'caption',
  '--output-format',
  'webdataset',
  '--output-folder',
  out,
  '--image-size',
  '24',
  '--number-sample-per-shard',
  String(perShard),
  '--thread-count',
  '4',
  '--allow-private-networks',
  '--progress-interval',
  '0.5',
];

/** Every tar of a folder read whole (a truncated tar throws), and the stats files. */
export async function readShards(folder: string) {
  const names = (await readdir(folder)).sort();
  const keys: string[] = [];
  const tars = names.filter((n) => n.endsWith('.tar'));
  for (const tar of tars) for await (const s of readTarSamples(join(folder, tar))) keys.push(s.__key__);
  const stats = await Promise.all(
    names
      .filter((n) => n.endsWith('_stats.json'))
      .map(async (n) => JSON.parse(await readFile(join(folder, n), 'utf8')) as Record<string, number>),
  );
  return { names, tars, keys, stats, successes: stats.reduce((k, s) => k + s.successes!, 0) };
}
