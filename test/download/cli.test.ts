import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startImageServer, type ImageServer } from '../helpers/image-server.js';
import { tempDir } from '../helpers/tmp.js';
import { readAllTars, readParquetRows } from './helpers.js';

/** These tests run the built CLI as a user would (npm test builds first). */
const cli = resolve('dist/cli/main.js');

function run(args: string[], opts: { killAfter?: (out: string) => boolean; cwd?: string } = {}) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((done) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = opts.killAfter
      ? setInterval(() => opts.killAfter!(stdout + stderr) && child.kill('SIGKILL'), 20)
      : undefined;
    child.on('close', (code, signal) => {
      clearInterval(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}

let server: ImageServer;
beforeAll(async () => {
  server = await startImageServer({ latencyMs: [20, 120] });
});
afterAll(async () => {
  await server.close();
});

async function urlList(dir: string, n: number) {
  const path = join(dir, 'urls.txt');
  await writeFile(
    path,
    Array.from(
      { length: n },
      (_, i) => `${server.url}/img/${64 + i}x48.jpg?color=${(i * 4001).toString(16).padStart(6, '0').slice(-6)}`,
    ).join('\n'),
  );
  return path;
}

const common = [
  '--output-format',
  'webdataset',
  '--image-size',
  '32',
  '--allow-private-networks',
  '--progress-interval',
  '0.2',
];

describe('clipstream download (CLI)', () => {
  it('refuses an fsspec URL other than s3:// (gs://, hf://…) for a folder or list instead of writing a local folder named "gs:"', async () => {
    const dir = await tempDir();
    const list = await urlList(dir, 1);
    const out = await run(['download', '--url-list', list, '--output-folder', 'gs://bucket/out', ...common], {
      cwd: dir,
    });
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(
      /Expected a local path or an s3:\/\/ URL for --output-folder but received "gs:\/\/bucket\/out": only local paths and s3:\/\/ URLs are supported \(other clouds are read through their S3 API/,
    );
    expect(await readdir(dir)).toEqual(['urls.txt']);
    const remoteList = await run(
      ['download', '--url-list', 'gs://bucket/urls.parquet', '--output-folder', join(dir, 'o')],
      { cwd: dir },
    );
    expect(remoteList.code).not.toBe(0);
    expect(remoteList.stderr).toMatch(/local path or an s3:\/\/ URL for --url-list/);
    const fileUrl = await run(
      ['download', '--url-list', `file://${list}`, '--output-folder', join(dir, 'o'), ...common],
      { cwd: dir },
    );
    expect(fileUrl.code).toBe(0);
    expect(fileUrl.stdout).toMatch(/success 1 /);
  });

  it('after SIGKILL, rerunning in incremental mode finishes with no shard lost or duplicated and no truncated tar', async () => {
    const dir = await tempDir();
    const list = await urlList(dir, 60);
    const out = join(dir, 'out');
    const args = [
      'download',
      '--url-list',
      list,
      '--output-folder',
      out,
      '--number-sample-per-shard',
      '5',
      '--thread-count',
      '3',
      ...common,
    ];
    const killed = await run(args, { killAfter: () => existsSync(join(out, '00002_stats.json')) });
    expect(killed.signal).toBe('SIGKILL');
    const afterKill = await readdir(out);
    expect(afterKill.filter((f) => f.endsWith('_stats.json')).length).toBeLessThan(12);
    // every final-named tar left behind is complete: it has its stats file
    for (const tar of afterKill.filter((f) => f.endsWith('.tar')))
      expect(afterKill).toContain(tar.replace('.tar', '_stats.json'));

    const resumed = await run(args);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/already done/);
    const names = await readdir(out);
    expect(names.filter((f) => f.includes('partial'))).toEqual([]);
    expect(names.filter((f) => f.endsWith('_stats.json'))).toHaveLength(12);
    const samples = await readAllTars(out);
    const keys = samples.map((s) => s.__key__);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).toHaveLength(60);
    const urls = new Set(samples.map((s) => JSON.parse(String(s.json)).url));
    expect(urls.size).toBe(60);
  });

  it('--processes-count 2 spreads shards over worker threads with the same output', async () => {
    const dir = await tempDir();
    const list = await urlList(dir, 40);
    const out = join(dir, 'out');
    const r = await run([
      'download',
      '--url-list',
      list,
      '--output-folder',
      out,
      '--number-sample-per-shard',
      '10',
      '--processes-count',
      '2',
      ...common,
    ]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/40 samples/);
    expect(r.stdout).toMatch(/success 40 \(100\.0%\)/);
    const samples = await readAllTars(out);
    expect(samples.map((s) => s.__key__).sort()).toEqual(
      Array.from({ length: 40 }, (_, i) => String(i).padStart(6, '0')), // ceil(log10(10)) = 1 digit per row
    );
    const rows = await readParquetRows(join(out, '00003.parquet'));
    expect(rows).toHaveLength(10);
  });

  it('prints progress lines when not on a terminal and a summary with the top failure reasons', async () => {
    const dir = await tempDir();
    const path = join(dir, 'u.txt');
    await writeFile(
      path,
      [
        `${server.url}/status/404`,
        `${server.url}/status/404`,
        `${server.url}/status/500`,
        `${server.url}/img/30x30.jpg`,
      ].join('\n'),
    );
    const r = await run(['download', '--url-list', path, '--output-folder', join(dir, 'o'), ...common]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/samples\/s/);
    expect(r.stdout).toMatch(/success 1 \(25\.0%\)/);
    expect(r.stdout).toMatch(/top failure reasons: http_404 2 \(50\.0%\), http_500 1/);
  });

  it('a missing url list: one clear line, exit code 2, no stack trace, nothing written', async () => {
    const dir = await tempDir();
    const out = join(dir, 'o');
    const r = await run([
      'download',
      '--url-list',
      join(dir, 'missing.csv'),
      '--input-format',
      'csv',
      '--output-folder',
      out,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/clipstream: error: .*missing\.csv/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(out)).toBe(false);
  });

  it('nothing saved: exit 1 and a hint from the most common failure (private addresses, a header read as a url)', async () => {
    const dir = await tempDir();
    const list = await urlList(dir, 2);
    const refused = await run([
      'download',
      '--url-list',
      list,
      '--output-folder',
      join(dir, 'a'),
      '--output-format',
      'dummy',
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(
      /no sample was saved: the most common failure is private_address \(2 of 2\).*add --allow-private-networks/,
    );
    const csv = join(dir, 'list.txt');
    await writeFile(csv, `url,caption\n${server.url}/img/20x20.jpg,a square\n`);
    const header = await run(['download', '--url-list', csv, '--output-folder', join(dir, 'b'), ...common]);
    expect(header.code).toBe(1);
    expect(header.stdout).toMatch(
      /the first row, "url,caption", looks like a csv header or row read as a url: --input-format txt reads every line as one url\. Use --input-format csv/,
    );
    const fine = await run([
      'download',
      '--url-list',
      csv,
      '--input-format',
      'csv',
      '--output-folder',
      join(dir, 'c'),
      ...common,
    ]);
    expect(fine.code).toBe(0);
    expect(fine.stdout).not.toMatch(/no sample was saved/);
  });

  it("img2dataset's other options: snake_case, wandb said to be ignored, other distributors refused", async () => {
    const dir = await tempDir();
    const list = await urlList(dir, 2);
    const out = join(dir, 'o');
    const r = await run([
      'download',
      '--url_list',
      list,
      '--output_folder',
      out,
      '--extract_exif=False',
      '--enable_wandb',
      'True',
      '--wandb_project',
      'p',
      '--subjob_size',
      '10',
      '--max_shard_retry',
      '3',
      '--distributor',
      'multiprocessing',
      '--compute_hash',
      'None',
      ...common,
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/--enable-wandb is ignored \(project "p"\)/);
    const json = JSON.parse(String((await readAllTars(out))[0]!.json)) as Record<string, unknown>;
    expect(Object.keys(json)).not.toContain('exif');
    expect(Object.keys(json)).not.toContain('sha256');
    const spark = await run([
      'download',
      '--url-list',
      list,
      '--output-folder',
      join(dir, 'p'),
      '--distributor',
      'pyspark',
    ]);
    expect(spark.code).toBe(2);
    expect(spark.stderr).toMatch(/--distributor: pyspark is not available here/);
  });

  it('a bad option value names the flag', async () => {
    const r = await run(['download', '--url-list', 'x.txt', '--resize-mode', 'stretch']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--resize-mode/);
    expect(r.stderr).toMatch(/stretch/);
  });
});
