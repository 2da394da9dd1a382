import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { exifJson } from '../../src/image/exif.js';
import { fractionText, pyFloatRepr, pyStrip } from '../../src/image/exif-print.js';

/** A JPEG with an APP1 "Exif" segment around the given TIFF structure. */
function jpegWithTiff(tiff: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, (body.length + 2) >> 8, (body.length + 2) & 0xff]), body]);
  // SOI, APP1, DQT (where exifread stops looking), a minimal SOF0 and an SOS so the walk sees a scan
  const dqt = Buffer.from([0xff, 0xdb, 0x00, 0x43, 0x00, ...new Array<number>(64).fill(1)]);
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00]);
  const sos = Buffer.from([0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x00, 0xff, 0xd9]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app1, dqt, sof, sos]);
}

/** A little-endian TIFF with one IFD of `entries` ([tag, type, count, value-or-offset]) and `extra` data after it. */
function tiff(entries: [number, number, number, number][], extra: number[] = [], next = 0): Uint8Array {
  const b = Buffer.alloc(8 + 2 + 12 * entries.length + 4 + extra.length);
  b.write('II', 0, 'latin1');
  b.writeUInt16LE(42, 2);
  b.writeUInt32LE(8, 4);
  b.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, count, value], i) => {
    const at = 10 + 12 * i;
    b.writeUInt16LE(tag, at);
    b.writeUInt16LE(type, at + 2);
    b.writeUInt32LE(count, at + 4);
    b.writeUInt32LE(value, at + 8);
  });
  b.writeUInt32LE(next, 10 + 12 * entries.length);
  Buffer.from(extra).copy(b, 14 + 12 * entries.length);
  return b;
}

describe('exif (img2dataset: json.dumps of exifread.process_file(details=False))', () => {
  it('names and prints tags as exifread does, with its one-byte-values-are-0 quirk', async () => {
    const jpeg = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#336699' } })
      .jpeg()
      .withExif({
        IFD0: { Make: 'Canon', Model: 'EOS R5', Copyright: 'Café ©' },
        IFD2: { ExposureTime: '1/250', FNumber: '2.8', ISOSpeedRatings: '400', LensModel: 'RF 50mm' },
        IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2950/100' },
      })
      .toBuffer();
    // What exifread-nocycle 3.0.1 prints for this file (python/tests/test_img2dataset_compat.py compares live)
    expect(exifJson(jpeg)).toBe(
      '{"Image Make": "Canon", "Image Model": "EOS R5", "Image Orientation": "Horizontal (normal)", "Image XResolution": "127/5", ' +
        '"Image YResolution": "127/5", "Image ResolutionUnit": "Pixels/Inch", "Image YCbCrPositioning": "Centered", ' +
        '"Image Copyright": "Cafe (C)", "Image ExifOffset": "174", "GPS GPSLatitudeRef": "N", "GPS GPSLatitude": "[48, 51, 59/2]", ' +
        '"Image GPSInfo": "324", "EXIF ExposureTime": "1/250", "EXIF FNumber": "14/5", "EXIF ISOSpeedRatings": "400", ' +
        '"EXIF ExifVersion": "", "EXIF ComponentsConfiguration": "", "EXIF FlashPixVersion": "", "EXIF ColorSpace": "Uncalibrated", ' +
        '"EXIF ExifImageWidth": "40", "EXIF ExifImageLength": "30", "EXIF LensModel": "RF 50mm"}',
    );
  });

  it('is "{}" for images without EXIF and for formats exifread does not read', async () => {
    const plain = sharp({ create: { width: 8, height: 8, channels: 3, background: '#ff0000' } });
    expect(exifJson(await plain.clone().jpeg().toBuffer())).toBe('{}');
    expect(exifJson(await plain.clone().png().toBuffer())).toBe('{}');
    expect(exifJson(await plain.clone().gif().toBuffer())).toBe('{}');
    expect(exifJson(Buffer.from('<html>not an image</html>'))).toBe('{}');
  });

  it('prints values as Python does: fractions reduced, floats as repr, texts stripped, non-ASCII escaped', () => {
    const data = [
      ...[6, 0, 0, 0, 4, 0, 0, 0], // rational 6/4 at offset 62
      ...[0, 0, 0, 0], // (unused: a one-value float sits in its entry)
      ...Buffer.from('  Ünï  \0junk', 'utf8'), // ascii (utf-8) at 74
    ];
    const t = tiff(
      [
        [0x011a, 5, 1, 62],
        [0x0100, 11, 1, 0x3fc0_0000],
        [0x010e, 2, 14, 74],
        [0x0112, 3, 1, 9],
      ],
      data,
    );
    expect(exifJson(jpegWithTiff(t))).toBe(
      '{"Image XResolution": "3/2", "Image ImageWidth": "(1.5,)", "Image ImageDescription": "\\u00dcn\\u00ef", "Image Orientation": "9"}',
    );
    expect([fractionText(10, -4), fractionText(5, 0), fractionText(0, 7)]).toEqual(['-5/2', '5/0', '0']);
    expect([1e16, 1e15, 0.0001, 0.00001, 1.5e-7, -2, 0.1].map(pyFloatRepr)).toEqual([
      '1e+16',
      '1000000000000000.0',
      '0.0001',
      '1e-05',
      '1.5e-07',
      '-2.0',
      '0.1',
    ]);
    expect(pyStrip('\x1c\u00a0 x \ufeff\x85')).toBe('x \ufeff');
  });

  it('takes the EXIF of WebP (VP8X + EXIF chunk) and TIFF files', async () => {
    const exif = Buffer.from(tiff([[0x010f, 2, 4, 0x00_6e_69_4e]])); // Make "Nin"
    const vp8x = Buffer.from([...Buffer.from('VP8X'), 10, 0, 0, 0, 0x08, 0, 0, 0, 7, 0, 0, 7, 0, 0]);
    const chunk = Buffer.concat([Buffer.from('EXIF'), Buffer.from([exif.length, 0, 0, 0]), exif]);
    const riff = Buffer.concat([Buffer.from('RIFF'), Buffer.from([0, 0, 0, 0]), Buffer.from('WEBP'), vp8x, chunk]);
    expect(exifJson(riff)).toBe('{"Image Make": "Nin"}');
    // libvips writes the chunk with an "Exif\0\0" prefix, whose 'E' exifread takes for a byte order and raises on
    const webp = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#00ff00' } })
      .webp()
      .withExif({ IFD0: { Make: 'Nikon' } })
      .toBuffer();
    expect(exifJson(webp)).toBeNull();
    const tif = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#00ff00' } })
      .tiff()
      .toBuffer();
    expect(JSON.parse(exifJson(tif)!)).toMatchObject({ 'Image ImageWidth': '8', 'Image ImageLength': '8' });
  });

  describe('hostile EXIF: never throws, bounded work and output', () => {
    it('an IFD chain that loops, and an IFD pointing at itself, end', () => {
      expect(exifJson(jpegWithTiff(tiff([[0x010f, 2, 3, 0x00_41_41]], [], 8)))).toBe('{"Image Make": "AA"}');
    });

    it('counts of billions read nothing past the data and print as exifread does', () => {
      const out = exifJson(
        jpegWithTiff(
          tiff([
            [0x0100, 4, 0xffff_ffff, 8],
            [0x010f, 2, 0xffff_ffff, 8],
            [0x0101, 3, 2000, 8],
          ]),
        ),
      );
      expect(out).not.toBeNull();
      expect(JSON.parse(out!)).toMatchObject({ 'Image ImageWidth': '[]', 'Image ImageLength': '[]' });
      expect(out!.length).toBeLessThan(200);
    });

    it('an unknown byte order or a value cut by the end of the data is null (exifread raises there)', () => {
      const t = Buffer.from(tiff([[0x010f, 2, 3, 0x00_41_41]]));
      t.write('XX', 0, 'latin1');
      expect(exifJson(jpegWithTiff(t))).toBeNull();
      expect(exifJson(jpegWithTiff(tiff([[0x011a, 5, 1, 0xfffe]])))).toBe('{"Image XResolution": "0/0"}');
      // a TIFF file is read to its end: a 4-byte offset with 3 bytes left raises in exifread
      const cut = Buffer.from(tiff([[0x011a, 4, 2, 0]])).subarray(0, 8 + 2 + 12 - 1);
      expect(exifJson(cut)).toBeNull();
    });

    it('random bytes after the EXIF header: no throw, output under 1 MiB, fast', () => {
      let seed = 7;
      const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      const started = performance.now();
      for (let n = 0; n < 2000; n++) {
        const body = Buffer.from(
          Array.from({ length: 8 + Math.floor(random() * 600) }, () => Math.floor(random() * 256)),
        );
        body.write(random() < 0.5 ? 'II' : 'MM', 0, 'latin1');
        // entry counts and offsets small enough to hit the data often
        for (let i = 2; i < body.length; i += 2) if (random() < 0.5) body[i] = Math.floor(random() * 16);
        const out = exifJson(jpegWithTiff(body));
        if (out !== null) expect(out.length).toBeLessThan(1 << 20);
      }
      expect(performance.now() - started).toBeLessThan(5000);
    });
  });
});
