import { describe, expect, it } from 'vitest';
import { ClipstreamError } from '../../src/core/errors.js';
import { keyFormatter, shardName } from '../../src/download/keys.js';
import { parseDownloadOptions } from '../../src/download/options.js';

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
    });
    expect(o.captionCol).toBeUndefined();
  });

  it("takes img2dataset's interpolation names and their aliases, and refuses others naming the option", () => {
    const o = parseDownloadOptions({ urlList: 'u.txt', upscaleInterpolation: 'bicubic', downscaleInterpolation: 'bilinear' });
    expect([o.upscaleInterpolation, o.downscaleInterpolation]).toEqual(['cubic', 'linear']);
    expect(parseDownloadOptions({ urlList: 'u.txt', upscaleInterpolation: 'LANCZOS4' }).upscaleInterpolation).toBe('lanczos');
    expect(() => parseDownloadOptions({ urlList: 'u.txt', downscaleInterpolation: 'box' })).toThrow(/--downscale-interpolation.*box|box.*--downscale-interpolation/);
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown resize mode', { resizeMode: 'stretch' }, /--resize-mode.*"stretch"/],
    ['a png quality over 9', { encodeFormat: 'png', encodeQuality: 95 }, /compression level 0–9 for png/],
    ['a reserved additional column', { saveAdditionalColumns: ['status'] }, /"status" is reserved/],
    ['a verify-hash type different from compute-hash', { verifyHash: ['h', 'md5'] }, /--verify-hash.*equal --compute-hash/],
    ['a non-integer shard size', { numberSamplePerShard: 1.5 }, /--number-sample-per-shard/],
    ['an unknown option', { threads: 3 }, /Unknown option --threads/],
    ['zero processes', { processesCount: 0 }, /--processes-count/],
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
