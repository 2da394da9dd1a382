import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { download } from '../../src/download/run.js';
import { openByteSource, readBytes } from '../../src/io/byte-source.js';
import { readUrlList } from '../../src/io/url-list.js';
import { s3Delete, s3List, s3Put, s3ReadSmall } from '../../src/io/s3.js';
import { startImageServer, type ImageServer } from '../helpers/image-server.js';
import { startS3Server, type S3Server } from '../helpers/services.js';
import { tempDir } from '../helpers/tmp.js';
import { readAllTars, readParquetRows } from './helpers.js';

/** Downloads to and from an S3-compatible server (moto, started here at a free port) as to and from a folder. */

const cli = resolve('dist/cli/main.js');
let images: ImageServer;
let s3: S3Server;

beforeAll(async () => {
  [images, s3] = await Promise.all([startImageServer(), startS3Server()]);
  await s3.createBucket('data');
}, 600_000);
afterAll(async () => {
  await Promise.all([images?.close(), s3?.stop()]);
});

const csv = (n: number) =>
  'url,caption\n' +
  Array.from({ length: n }, (_, i) =>
    i % 7 === 3 ? `${images.url}/status/404,gone ${i}\n` : `${images.url}/img/${40 + i}x30.jpg,caption ${i}\n`,
  ).join('');

const options = (urlList: string, outputFolder: string) => ({
  urlList,
  outputFolder,
  inputFormat: 'csv' as const,
  captionCol: 'caption',
  outputFormat: 'webdataset' as const,
  imageSize: 32,
  numberSamplePerShard: 10,
  threadCount: 8,
  allowPrivateNetworks: true,
});

/** The bytes of an object, through the byte source (what every reader uses). */
async function objectBytes(url: string): Promise<Buffer> {
  const { source } = await openByteSource(url);
  return Buffer.from(await readBytes(source, 0, source.size));
}

function runCli(args: string[], env: NodeJS.ProcessEnv) {
  return new Promise<{ code: number | null; stderr: string }>((done) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ code, stderr }));
  });
}

describe('download with s3:// paths', () => {
  it('reads the url list from S3 and writes the same shards as a local run: data objects and stats', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'urls.csv'), csv(25));
    await s3Put('s3://data/lists/urls.csv', { bytes: csv(25) });

    const local = await download(options(join(dir, 'urls.csv'), join(dir, 'out')));
    const remote = await download(options('s3://data/lists/urls.csv', 's3://data/run1/out'));

    expect(remote.successes).toBe(local.successes);
    expect(remote.successes).toBe(21); // rows 3, 10, 17, 24 are 404s
    expect(remote.shardsWritten).toBe(3);
    expect(await s3List('s3://data/run1/out')).toEqual([
      '00000.parquet',
      '00000.tar',
      '00000_stats.json',
      '00001.parquet',
      '00001.tar',
      '00001_stats.json',
      '00002.parquet',
      '00002.tar',
      '00002_stats.json',
    ]);
    // the objects, copied back to a folder, read as the local shards: same keys, captions and rows
    const copy = join(dir, 'copy');
    await mkdir(copy);
    for (const name of await s3List('s3://data/run1/out')) {
      await writeFile(join(copy, name), await objectBytes(`s3://data/run1/out/${name}`));
    }
    const keysOf = async (folder: string) => (await readAllTars(folder)).map((s) => s.__key__).sort();
    expect(await keysOf(copy)).toHaveLength(21);
    expect(await keysOf(copy)).toEqual(await keysOf(join(dir, 'out')));
    const rows = await readParquetRows(join(copy, '00001.parquet'));
    expect(rows.map((r) => r.status)).toHaveLength(10);
    const stats = JSON.parse(String(await s3ReadSmall('s3://data/run1/out/00002_stats.json', 1 << 20)));
    expect(stats).toMatchObject({ count: 5, successes: 4, failed_to_download: 1 });
  });

  it('incremental on S3: shards with a stats object are skipped, the others redone and replaced', async () => {
    await s3Put('s3://data/lists/inc.csv', { bytes: csv(20) });
    const first = await download(options('s3://data/lists/inc.csv', 's3://data/inc'));
    expect(first.shardsWritten).toBe(2);
    // shard 1 as a crash leaves it: data objects without their stats
    await s3Delete('s3://data/inc', ['00001_stats.json']);
    await s3Put('s3://data/inc/00001.tar', { bytes: 'truncated' });
    const again = await download(options('s3://data/lists/inc.csv', 's3://data/inc'));
    expect(again.shardsSkipped).toBe(1);
    expect(again.shardsWritten).toBe(1);
    const tar = await objectBytes('s3://data/inc/00001.tar');
    expect(tar.length).toBeGreaterThan(10_000); // replaced whole
    expect(await s3List('s3://data/inc')).toContain('00001_stats.json');
  });

  it('reads a parquet url list and a prefix of csv files in place on S3', async () => {
    const dir = await tempDir();
    await s3Put('s3://data/many/a.csv', { bytes: csv(3) });
    await s3Put('s3://data/many/b.csv', { bytes: csv(2) });
    await s3Put('s3://data/many/notes.txt', { bytes: 'not a list' });
    const rows = [];
    for await (const row of readUrlList({
      urlList: 's3://data/many',
      inputFormat: 'csv',
      urlCol: 'url',
      captionCol: 'caption',
      additionalColumns: [],
    })) {
      rows.push(row);
    }
    expect(rows.map((r) => [r.index, r.caption])).toEqual([
      [0, 'caption 0'],
      [1, 'caption 1'],
      [2, 'caption 2'],
      [3, 'caption 0'],
      [4, 'caption 1'],
    ]);
    // a parquet list: written locally by a download (its meta parquet), read back in place from S3
    await writeFile(join(dir, 'urls.csv'), csv(8));
    await download({ ...options(join(dir, 'urls.csv'), join(dir, 'o')), numberSamplePerShard: 100 });
    await s3Put('s3://data/lists/meta.parquet', { bytes: await readFile(join(dir, 'o', '00000.parquet')) });
    const fromParquet = [];
    for await (const row of readUrlList({
      urlList: 's3://data/lists/meta.parquet',
      inputFormat: 'parquet',
      urlCol: 'url',
      captionCol: 'caption',
      additionalColumns: [],
    })) {
      fromParquet.push(row.caption);
    }
    expect(fromParquet.sort()).toEqual(
      Array.from({ length: 8 }, (_, i) => (i === 3 ? `gone ${i}` : `caption ${i}`)).sort(),
    );
  });

  it('a missing bucket, a missing list and missing credentials are clear errors naming the URL (exit 2, 2, 1)', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'urls.csv'), csv(2));
    const env = { ...process.env, ...s3.env };
    const flags = ['--input-format', 'csv', '--allow-private-networks'];
    const noBucket = await runCli(
      ['download', '--url-list', join(dir, 'urls.csv'), '--output-folder', 's3://nosuchbucket/out', ...flags],
      env,
    );
    expect(noBucket.code).toBe(2);
    expect(noBucket.stderr).toMatch(/the bucket "nosuchbucket" of s3:\/\/nosuchbucket\/out does not exist/);
    expect(noBucket.stderr).toMatch(/Create the bucket first/);
    expect(noBucket.stderr).not.toMatch(/ at /); // no stack trace

    const noList = await runCli(['download', '--url-list', 's3://data/nothing-here.csv', ...flags], env);
    expect(noList.code).toBe(2);
    expect(noList.stderr).toMatch(/no object s3:\/\/data\/nothing-here\.csv/);

    const bare: NodeJS.ProcessEnv = { ...env, AWS_EC2_METADATA_DISABLED: 'true', HOME: dir };
    delete bare.AWS_ACCESS_KEY_ID;
    delete bare.AWS_SECRET_ACCESS_KEY;
    const noCredentials = await runCli(
      ['download', '--url-list', join(dir, 'urls.csv'), '--output-folder', 's3://data/out', ...flags],
      bare,
    );
    expect(noCredentials.code).toBe(1);
    expect(noCredentials.stderr).toMatch(/no AWS credentials found/);
    expect(noCredentials.stderr).toMatch(/AWS_ACCESS_KEY_ID/);
  });
});
