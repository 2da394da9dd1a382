import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { hashBytes, sniffImageFormat } from '../../src/image/index.js';

describe('hashBytes', () => {
  // FIPS 180 / RFC 1321 test vectors
  it.each([
    ['md5', '', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['md5', 'abc', '900150983cd24fb0d6963f7d28e17f72'],
    ['sha256', '', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['sha256', 'abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    [
      'sha512',
      'abc',
      'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    ],
  ] as const)('%s(%j)', (algorithm, text, hex) => {
    expect(hashBytes(new TextEncoder().encode(text), algorithm)).toBe(hex);
    expect(hashBytes(Buffer.from(text), algorithm)).toBe(hex);
  });
});

describe('sniffImageFormat', () => {
  it('identifies images by their magic bytes', async () => {
    const create = () => sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } });
    expect(sniffImageFormat(await create().jpeg().toBuffer())).toBe('jpg');
    expect(sniffImageFormat(await create().png().toBuffer())).toBe('png');
    expect(sniffImageFormat(await create().webp().toBuffer())).toBe('webp');
    expect(sniffImageFormat(await create().gif().toBuffer())).toBe('gif');
    expect(sniffImageFormat(await create().tiff().toBuffer())).toBe('tiff');
    expect(sniffImageFormat(await create().avif().toBuffer())).toBe('avif');
    expect(sniffImageFormat(Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]))).toBe('bmp');
  });

  it('says null for anything else', () => {
    for (const text of [
      '<!DOCTYPE html><html></html>',
      '<?xml version="1.0"?><svg/>',
      '{"a": 1, "b": 2}',
      '',
      'RIFF0000WAVEfmt ',
    ]) {
      expect(sniffImageFormat(Buffer.from(text))).toBeNull();
    }
    expect(sniffImageFormat(new Uint8Array([0xff, 0xd8]))).toBeNull();
  });
});

describe('libvips in the processes that resize', () => {
  it('has its operation cache off once the image brick is loaded (every image is seen once)', () => {
    expect(sharp.cache().items.max).toBe(0);
    expect(sharp.cache().memory.max).toBe(0);
  });
});
