import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { withJfif } from '../../src/image/jfif.js';
import { readJpegHeader } from '../../src/image/jpeg-header.js';
import { defaultImageOptions, processImage } from '../../src/image/index.js';

describe('JPEG output opens with a JFIF APP0, as cv2 (img2dataset) writes it', () => {
  it('the first segment after SOI is APP0 "JFIF\\0" version 1.1, aspect 1:1, no thumbnail; the file still decodes', async () => {
    const png = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#884422' } })
      .png()
      .toBuffer();
    const out = await processImage(png, defaultImageOptions);
    expect(out.ok).toBe(true);
    const jpg = (out as { data: Buffer }).data;
    expect([...jpg.subarray(0, 4)]).toEqual([0xff, 0xd8, 0xff, 0xe0]);
    expect(jpg.readUInt16BE(4)).toBe(16);
    expect(jpg.subarray(6, 11).toString('latin1')).toBe('JFIF\0');
    expect([...jpg.subarray(11, 20)]).toEqual([1, 1, 0, 0, 1, 0, 1, 0, 0]);
    expect(readJpegHeader(jpg)).toEqual({ width: 256, height: 256, orientation: 1 });
    const { data, info } = await sharp(jpg).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([256, 256]);
    expect(Math.abs(data[3 * (128 * 256 + 128)]! - 0x88)).toBeLessThan(4);
  });

  it('is added once, only to JPEGs; bytes kept by --skip-reencode stay as downloaded', async () => {
    const bare = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#000000' } })
      .jpeg()
      .toBuffer();
    expect(bare[3]).not.toBe(0xe0); // libvips alone writes no JFIF
    const once = withJfif(bare);
    expect(withJfif(once)).toBe(once);
    expect(withJfif(Buffer.from('not a jpeg'))).toEqual(Buffer.from('not a jpeg'));
    const kept = await processImage(bare, { ...defaultImageOptions, imageSize: 16, skipReencode: true });
    expect((kept as { data: Buffer }).data).toBe(bare);
    const png = await processImage(bare, {
      ...defaultImageOptions,
      imageSize: 16,
      encodeFormat: 'png',
      encodeQuality: 1,
    });
    expect([...(png as { data: Buffer }).data.subarray(1, 4)]).toEqual([...Buffer.from('PNG')]);
  });
});
