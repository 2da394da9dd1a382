/** `clipstream index info DIR|URL` on faiss folders: a local folder, the same over HTTP, a misaligned folder. */
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveFolder, type RangeServer } from '../../helpers/range-server.js';
import { faissFixtures, FIXTURE_TIMEOUT_MS } from './fixtures.js';

const run = promisify(execFile);
const info = (...args: string[]) => run(process.execPath, [resolve('dist/cli/main.js'), 'index', 'info', ...args]);

let dir: string;
let server: RangeServer;
beforeAll(async () => {
  dir = await faissFixtures();
  server = await serveFolder(join(dir, 'folders'));
}, FIXTURE_TIMEOUT_MS);
afterAll(() => server?.close());

describe('clipstream index info', () => {
  it('an on-disk folder: type, dimension, vectors, lists, PQ, metric, parameters, bytes, metadata, alignment', async () => {
    const { stdout } = await info(join(dir, 'folders/ondisk'));
    for (const line of [
      /\(faiss index\)\n/,
      /type +LT64_64,IVF256_HNSW32,PQ16x8 +\(autofaiss index_key OPQ16_64,IVF256_HNSW32,PQ16x8\)/,
      /dimension +64\n/,
      /vectors +12,000\n/,
      /metric +inner product/,
      /lists +256 \(on disk, in the \.ivfdata file\)/,
      /PQ +16 sub-quantizers × 8 bits/,
      /search +nprobe 16, efSearch 32 \(from image\.json: nprobe=16,efSearch=32,ht=2048\)/,
      /index files +2: image\.index\/populated\.index, image\.index\/merged_index\.ivfdata, [\d.]+ KB/,
      /metadata +arrow, 2 files: metadata\/0_en\.arrow, metadata\/1_multi\.arrow/,
      /rows +12,000\n/,
      /aligned +yes: metadata rows = vectors/,
    ])
      expect(stdout).toMatch(line);
  });

  it('the same folder over HTTP, as JSON: the same description, read by range requests', async () => {
    const local = JSON.parse((await info(join(dir, 'folders/ondisk'), '--format', 'json')).stdout) as Record<
      string,
      unknown
    >;
    const remote = JSON.parse((await info(`${server.base}/ondisk`, '--format', 'json')).stdout) as Record<
      string,
      unknown
    >;
    const same = ['kind', 'type', 'd', 'ntotal', 'metric', 'nlist', 'pqSubQuantizers', 'nprobe', 'efSearch', 'lists'];
    for (const key of same) expect(remote[key]).toEqual(local[key]);
    expect(remote).toMatchObject({
      aligned: true,
      bytesOnDisk: local.bytesOnDisk,
      totalBytesOnDisk: local.totalBytesOnDisk,
    });
    expect((remote.metadata as { rows: number }).rows).toBe(12_000);
    // headers and footers only: no list is read (the .ivfdata file is probed for its size: one byte)
    expect(server.sent.get('/ondisk/image.index/merged_index.ivfdata')).toBeLessThanOrEqual(1);
  });

  it('a misaligned folder: described (not refused), and the disagreement named', async () => {
    const { stdout } = await info(join(dir, 'folders/misaligned'));
    expect(stdout).toMatch(/index files +3: index-parts\/00\.index, index-parts\/01\.index, index-parts\/02\.index/);
    expect(stdout).toMatch(/rows +11,999\n/);
    expect(stdout).toMatch(
      /aligned +NO: .*the metadata has 11999 rows \(2 files, .*\) but the index has 12000 vectors/,
    );
  });

  it('a folder that is no index, and a URL that has none: one clear line, exit 2', async () => {
    const err = await info(join(dir, 'answers')).catch((e: { code: number; stderr: string }) => e);
    expect(err).toMatchObject({ code: 2, stderr: expect.stringMatching(/is not an index folder/) });
    const none = await info(`${server.base}/nothing`).catch((e: { code: number; stderr: string }) => e);
    expect(none).toMatchObject({ code: 2, stderr: expect.stringMatching(/no faiss index in .*nothing/) });
  });
});
