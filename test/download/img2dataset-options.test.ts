import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { download } from '../../src/download/run.js';
import { startImageServer, type ImageServer } from '../helpers/image-server.js';
import { tempDir } from '../helpers/tmp.js';
import { readParquet } from '../sink/helpers.js';
import { readAllTars, sha256, writeCsv } from './helpers.js';

let server: ImageServer;
beforeAll(async () => {
  server = await startImageServer();
});
afterAll(async () => {
  await server.close();
});

const base = { allowPrivateNetworks: true, threadCount: 8, timeout: 5, outputFormat: 'webdataset' as const } as const;
const OUTCOME = ['key', 'status', 'error_message', 'width', 'height', 'original_width', 'original_height'];

async function jsonl(dir: string, rows: Record<string, unknown>[]): Promise<string> {
  const path = join(dir, 'urls.jsonl');
  await writeFile(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
}

async function metas(out: string) {
  return (await readAllTars(out)).map((s) => ({
    sample: s,
    meta: JSON.parse(String(s.json)) as Record<string, unknown>,
  }));
}

describe("img2dataset's field order: sample json and shard parquet", () => {
  it('csv: additional columns, the bbox column, caption, url, then the outcome, exif, the hash; our reason last', async () => {
    const dir = await tempDir();
    const url = `${server.url}/img/40x30.png?color=102030`;
    const path = await writeCsv(
      join(dir, 'u.csv'),
      ['url', 'text', 'license', 'faces', 'h'],
      [[url, 'a cat', 'cc-by', '[]', 'f'.repeat(64)]],
    );
    const out = join(dir, 'o');
    await download({
      ...base,
      urlList: path,
      outputFolder: out,
      inputFormat: 'csv',
      captionCol: 'text',
      saveAdditionalColumns: ['license'],
      bboxCol: 'faces',
    });
    const { meta } = (await metas(out))[0]!;
    expect(Object.keys(meta)).toEqual(['license', 'faces', 'caption', 'url', ...OUTCOME, 'exif', 'sha256', 'reason']);
    const parquet = await readParquet(join(out, '00000.parquet'));
    expect(parquet.columns.map((c) => c.name)).toEqual(Object.keys(meta));

    // with --verify-hash img2dataset's parquet has the hash where its reader put the verify column: before url
    const verified = join(dir, 'v');
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const listed = await writeCsv(join(dir, 'v.csv'), ['url', 'text', 'h'], [[url, 'a cat', sha256(bytes)]]);
    await download({
      ...base,
      urlList: listed,
      outputFolder: verified,
      inputFormat: 'csv',
      captionCol: 'text',
      verifyHash: ['h', 'sha256'],
    });
    const { meta: vmeta } = (await metas(verified))[0]!;
    expect(Object.keys(vmeta)).toEqual(['caption', 'url', ...OUTCOME, 'exif', 'sha256', 'reason']);
    expect((await readParquet(join(verified, '00000.parquet'))).columns.map((c) => c.name)).toEqual([
      'caption',
      'sha256',
      'url',
      ...OUTCOME,
      'exif',
      'reason',
    ]);
  });

  it('txt: url is the only input column; --extract-exif false and --compute-hash none drop their fields', async () => {
    const dir = await tempDir();
    const path = join(dir, 'u.txt');
    await writeFile(path, `${server.url}/img/20x20.jpg\n`);
    const out = join(dir, 'o');
    await download({ ...base, urlList: path, outputFolder: out, extractExif: false, computeHash: 'none' });
    const { meta } = (await metas(out))[0]!;
    expect(Object.keys(meta)).toEqual(['url', ...OUTCOME, 'reason']);
    expect((await readParquet(join(out, '00000.parquet'))).columns.map((c) => c.name)).toEqual([
      'url',
      ...OUTCOME,
      'reason',
    ]);
  });
});

describe('--extract-exif (default on)', () => {
  it("fills exif with the original bytes' tags as a JSON string; failures have null", async () => {
    const dir = await tempDir();
    const path = join(dir, 'u.txt');
    await writeFile(path, [`${server.url}/exif/60x40.jpg?orientation=6`, `${server.url}/status/404`].join('\n'));
    const out = join(dir, 'o');
    await download({ ...base, urlList: path, outputFolder: out });
    const { meta } = (await metas(out))[0]!;
    expect(JSON.parse(meta.exif as string)).toMatchObject({ 'Image Orientation': 'Rotated 90 CW' });
    const rows = (await readParquet(join(out, '00000.parquet'))).rows;
    expect(rows.find((r) => r.status === 'success')!.exif).toBe(meta.exif);
    expect(rows.find((r) => r.status !== 'success')!.exif).toBeNull();
  });
});

describe('--bbox-col', () => {
  it('blurs the boxes of each row (before the crop), keeps the column, and fails a row whose boxes are not boxes', async () => {
    const dir = await tempDir();
    const url = `${server.url}/img/200x100.png?color=c81414&checker=4`;
    const path = await jsonl(dir, [
      { url, faces: [[0.25, 0.2, 0.5, 0.8]] },
      { url: url + '&n=1', faces: null },
      { url: url + '&n=2', faces: 'no boxes here' },
    ]);
    const out = join(dir, 'o');
    const summary = await download({
      ...base,
      urlList: path,
      outputFolder: out,
      inputFormat: 'jsonl',
      bboxCol: 'faces',
      resizeMode: 'no',
      encodeFormat: 'png',
      encodeQuality: 1,
    });
    expect(summary).toMatchObject({ successes: 2, failedToResize: 1, reasons: { invalid_bbox: 1 } });
    const samples = await metas(out);
    const blurred = samples.find((s) => Array.isArray(s.meta.faces))!;
    const plain = samples.find((s) => s.meta.faces === null)!;
    expect(blurred.meta.faces).toEqual([[0.25, 0.2, 0.5, 0.8]]);
    const [a, b] = await Promise.all(
      [blurred, plain].map((s) =>
        sharp(s.sample.png as Buffer)
          .raw()
          .toBuffer(),
      ),
    );
    const differs = (x0: number, x1: number) => {
      for (let y = 0; y < 100; y++)
        for (let x = x0; x < x1; x++) if (a![(y * 200 + x) * 3 + 1] !== b![(y * 200 + x) * 3 + 1]) return true;
      return false;
    };
    expect(differs(60, 90)).toBe(true);
    expect(differs(0, 37) || differs(113, 200)).toBe(false);
    const failed = (await readParquet(join(out, '00000.parquet'))).rows.find((r) => r.reason === 'invalid_bbox')!;
    expect(failed.error_message).toMatch(/^faces: Expected a JSON list of \[x_min, y_min, x_max, y_max\] boxes/);
  });
});

describe('--disable-all-reencoding', () => {
  it('stores the downloaded bytes untouched with null sizes, refuses bodies that are no image', async () => {
    const dir = await tempDir();
    const png = `${server.url}/img/30x20.png?color=00ff00`;
    const path = join(dir, 'u.txt');
    await writeFile(path, [png, `${server.url}/html`].join('\n'));
    const out = join(dir, 'o');
    const summary = await download({ ...base, urlList: path, outputFolder: out, disableAllReencoding: true });
    expect(summary).toMatchObject({ successes: 1, failedToResize: 1, reasons: { not_an_image: 1 } });
    const { sample, meta } = (await metas(out))[0]!;
    // img2dataset names the member after --encode-format whatever the bytes are
    expect(Buffer.compare(sample.jpg as Buffer, Buffer.from(await (await fetch(png)).arrayBuffer()))).toBe(0);
    expect(meta).toMatchObject({
      width: null,
      height: null,
      original_width: null,
      original_height: null,
      exif: '{}',
      status: 'success',
    });
  });
});

describe('--max-shard-retry', () => {
  it('defaults to 1 and reports no retry round when no shard failed', async () => {
    const dir = await tempDir();
    const path = join(dir, 'u.txt');
    await writeFile(path, `${server.url}/img/20x20.jpg\n`);
    const s = await download({ ...base, urlList: path, outputFolder: join(dir, 'o') });
    expect(s).toMatchObject({ shardRetryRounds: 0, failedShards: [], successes: 1 });
  });
});
