import { describe, expect, it } from 'vitest';
import { ClipstreamError } from '../../src/core/errors.js';
import { keyFormatter, shardName } from '../../src/download/keys.js';
import { downloadNotices, parseDownloadOptions } from '../../src/download/options.js';

describe('download options', () => {
  it("has img2dataset's defaults", () => {
    const o = parseDownloadOptions({ urlList: 'urls.txt' });
    expect(o).toMatchObject({
      outputFolder: 'images',
      inputFormat: 'txt',
      urlCol: 'url',
      outputFormat: 'files',
      imageSize: 256,
      resizeMode: 'border',
      resizeOnlyIfBigger: false,
      upscaleInterpolation: 'lanczos',
      downscaleInterpolation: 'area',
      encodeFormat: 'jpg',
      encodeQuality: 95,
      numberSamplePerShard: 10_000,
      threadCount: 256,
      processesCount: 1,
      timeout: 10,
      retries: 0,
      computeHash: 'sha256',
      incrementalMode: 'incremental',
      disallowedHeaderDirectives: ['noai', 'noimageai', 'noindex', 'noimageindex'],
      allowPrivateNetworks: false,
      maxImageArea: Infinity,
      extractExif: true,
      maxShardRetry: 1,
      distributor: 'multiprocessing',
      subjobSize: 1000,
      disableAllReencoding: false,
      enableWandb: false,
      wandbProject: 'img2dataset',
    });
    expect(o.bboxCol).toBeUndefined();
    expect(o.captionCol).toBeUndefined();
  });

  it("takes img2dataset's interpolation names and their aliases, and refuses others naming the option", () => {
    const o = parseDownloadOptions({
      urlList: 'u.txt',
      upscaleInterpolation: 'bicubic',
      downscaleInterpolation: 'bilinear',
    });
    expect([o.upscaleInterpolation, o.downscaleInterpolation]).toEqual(['cubic', 'linear']);
    expect(parseDownloadOptions({ urlList: 'u.txt', upscaleInterpolation: 'LANCZOS4' }).upscaleInterpolation).toBe(
      'lanczos',
    );
    expect(() => parseDownloadOptions({ urlList: 'u.txt', downscaleInterpolation: 'box' })).toThrow(
      /--downscale-interpolation.*box|box.*--downscale-interpolation/,
    );
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown resize mode', { resizeMode: 'stretch' }, /--resize-mode.*"stretch"/],
    ['a png quality over 9', { encodeFormat: 'png', encodeQuality: 95 }, /compression level 0–9 for png/],
    ['a reserved additional column', { saveAdditionalColumns: ['status'] }, /"status" is reserved/],
    [
      'a verify-hash type different from compute-hash',
      { verifyHash: ['h', 'md5'] },
      /--verify-hash.*equal --compute-hash/,
    ],
    ['a non-integer shard size', { numberSamplePerShard: 1.5 }, /--number-sample-per-shard/],
    ['an unknown option', { threads: 3 }, /Unknown option --threads/],
    ['zero processes', { processesCount: 0 }, /--processes-count/],
    [
      'the pyspark distributor',
      { distributor: 'pyspark' },
      /--distributor: pyspark is not available here: clipstream runs shards on --processes-count worker threads/,
    ],
    [
      'an unknown distributor',
      { distributor: 'dask' },
      /--distributor: Expected one of multiprocessing, queue but received "dask"/,
    ],
    [
      'the queue distributor without a queue',
      { distributor: 'queue' },
      /--queue: is required with --distributor queue/,
    ],
    [
      'a queue without the queue distributor',
      { queue: 'redis://127.0.0.1:6379/0' },
      /--queue: goes with --distributor queue \(received --distributor multiprocessing\)/,
    ],
    ['a bbox column in a txt list', { bboxCol: 'faces' }, /--bbox-col: a txt url list has only a url column/],
    ['a reserved bbox column', { inputFormat: 'csv', bboxCol: 'exif' }, /--bbox-col: Column "exif" is reserved/],
    [
      'blur without decoding',
      { inputFormat: 'csv', bboxCol: 'faces', disableAllReencoding: true },
      /--disable-all-reencoding: .*--bbox-col could not blur/,
    ],
    [
      'npy without decoding',
      { encodeFormat: 'npy', disableAllReencoding: true },
      /--disable-all-reencoding: .*--encode-format npy needs decoded pixels/,
    ],
    ['a negative max shard retry', { maxShardRetry: -1 }, /--max-shard-retry/],
  ];
  it.each(bad)('refuses %s with a message naming the flag', (_name, extra, message) => {
    try {
      parseDownloadOptions({ urlList: 'u.txt', ...extra });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ClipstreamError);
      expect((err as ClipstreamError).code).toBe('INVALID_OPTION');
      expect((err as Error).message).toMatch(message);
    }
  });
});

describe('download notices', () => {
  it('says once that --enable-wandb is ignored and where progress goes instead; nothing otherwise', () => {
    expect(downloadNotices(parseDownloadOptions({ urlList: 'u.txt', subjobSize: 7 }))).toEqual([]);
    const [notice, ...rest] = downloadNotices(
      parseDownloadOptions({ urlList: 'u.txt', enableWandb: true, wandbProject: 'mine' }),
    );
    expect(rest).toEqual([]);
    expect(notice).toMatch(
      /--enable-wandb is ignored \(project "mine"\): clipstream does not log to Weights & Biases; progress is printed here.*_stats\.json/,
    );
  });
});

describe('keys', () => {
  it("follows img2dataset's compute_key", () => {
    const key = keyFormatter(10_000, 5);
    expect(key(0, 0)).toBe('000000000');
    expect(key(1, 5)).toBe('000010005');
    expect(key(123, 9999)).toBe('001239999');
    expect(keyFormatter(100, 5)(3, 7)).toBe('0000307');
    expect(keyFormatter(1000, 3)(2, 1)).toBe('002001');
    expect(shardName(42, 5)).toBe('00042');
  });
});
