import sharp, { type JpegOptions } from 'sharp';
import { describe, expect, it, vi } from 'vitest';
import { readJpegHeader } from '../../src/image/jpeg-header.js';
import { bands, noise, ok, run } from './fixtures.js';

const jpeg = (width: number, height: number, o: JpegOptions = {}) =>
  sharp(noise(width, height), { raw: { width, height, channels: 3 } })
    .jpeg(o)
    .toBuffer();

/** An APP1 Exif segment holding a TIFF IFD0 with one Orientation entry, in either byte order. */
function exifSegment(orientation: number, byteOrder: 'II' | 'MM', { type = 3, count = 1 } = {}): Buffer {
  const tiff = Buffer.alloc(8 + 2 + 12 + 4);
  const le = byteOrder === 'II';
  const u16 = (v: number, at: number) => (le ? tiff.writeUInt16LE(v, at) : tiff.writeUInt16BE(v, at));
  const u32 = (v: number, at: number) => (le ? tiff.writeUInt32LE(v, at) : tiff.writeUInt32BE(v, at));
  tiff.write(byteOrder, 0, 'latin1');
  u16(42, 2);
  u32(8, 4); // IFD0 right after the header
  u16(1, 8); // one entry
  u16(0x0112, 10);
  u16(type, 12);
  u32(count, 14);
  u16(orientation, 18);
  u32(0, 22); // no next IFD
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const head = Buffer.from([0xff, 0xe1, 0, 0]);
  head.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([head, body]);
}

const withSegment = (file: Buffer, segment: Buffer) => Buffer.concat([file.subarray(0, 2), segment, file.subarray(2)]);

describe('readJpegHeader', () => {
  it('reads the size libvips reads, for baseline, progressive, grey, CMYK and 4:4:4 files', async () => {
    const files = [
      await jpeg(641, 479),
      await jpeg(17, 3000, { progressive: true }),
      await sharp(noise(120, 80), { raw: { width: 120, height: 80, channels: 3 } })
        .greyscale()
        .jpeg()
        .toBuffer(),
      await sharp(noise(90, 60), { raw: { width: 90, height: 60, channels: 3 } })
        .toColourspace('cmyk')
        .jpeg()
        .toBuffer(),
      await jpeg(33, 65, { chromaSubsampling: '4:4:4', quality: 100 }),
    ];
    for (const file of files) {
      const meta = await sharp(file).metadata();
      expect(readJpegHeader(file)).toEqual({ width: meta.width, height: meta.height, orientation: 1 });
    }
  });

  it('reads every EXIF orientation sharp writes, and both TIFF byte orders', async () => {
    const base = await jpeg(40, 30);
    for (let orientation = 1; orientation <= 8; orientation++) {
      const tagged = await sharp(base).withMetadata({ orientation }).jpeg().toBuffer();
      expect((await sharp(tagged).metadata()).orientation).toBe(orientation);
      expect(readJpegHeader(tagged)).toEqual({ width: 40, height: 30, orientation });
      for (const order of ['II', 'MM'] as const) {
        const ours = withSegment(base, exifSegment(orientation, order));
        expect((await sharp(ours).metadata()).orientation, `${order} ${orientation}`).toBe(orientation);
        expect(readJpegHeader(ours)).toEqual({ width: 40, height: 30, orientation });
      }
    }
  });

  it('reads a LONG tag, treats a value out of range as upright, as libvips does, and leaves other forms to it', async () => {
    const base = await jpeg(40, 30);
    const long = withSegment(base, exifSegment(6, 'II', { type: 4 }));
    expect((await sharp(long).metadata()).orientation).toBe(6);
    expect(readJpegHeader(long)?.orientation).toBe(6);
    for (const segment of [exifSegment(9, 'II'), exifSegment(0, 'MM')]) {
      const file = withSegment(base, segment);
      expect((await sharp(file).metadata()).orientation ?? 1).toBe(1);
      expect(readJpegHeader(file)?.orientation).toBe(1);
    }
    expect(readJpegHeader(withSegment(base, exifSegment(6, 'MM', { type: 5 })))).toBeNull();
    expect(readJpegHeader(withSegment(base, exifSegment(6, 'MM', { count: 2 })))).toBeNull();
  });

  it('leaves to libvips the EXIF blocks libexif may read otherwise, so that the sizes follow the rotation applied', async () => {
    const base = await jpeg(40, 30);
    // a LONG orientation over 16 bits (libexif keeps its low 16 bits: 0x00010006 is 6 there)
    const long = exifSegment(6, 'II', { type: 4 });
    long[4 + 6 + 20] = 1;
    // a first APP1 that starts "Exif" without the two NULs, then a proper one tagged 6
    const junk = Buffer.concat([Buffer.from([0xff, 0xe1, 0, 24]), Buffer.from('ExifXX', 'latin1'), Buffer.alloc(16)]);
    // IFD0 at offset 4, inside the TIFF header
    const overlapping = exifSegment(6, 'MM');
    overlapping.writeUInt32BE(4, 4 + 6 + 4);
    const files = [
      withSegment(base, long),
      withSegment(withSegment(base, exifSegment(6, 'II')), junk),
      withSegment(base, overlapping),
    ];
    for (const file of files) {
      expect(readJpegHeader(file)).toBeNull();
      const turned = ((await sharp(file).metadata()).orientation ?? 1) >= 5;
      const out = ok(await run(file, { resizeMode: 'no' }));
      expect([out.originalWidth, out.originalHeight, out.width, out.height]).toEqual(
        turned ? [30, 40, 30, 40] : [40, 30, 40, 30],
      );
    }
  });

  it('gives up (null) on what it does not fully understand, so that libvips decides', async () => {
    const file = await jpeg(64, 48);
    expect(readJpegHeader(Buffer.from('not a jpeg at all'))).toBeNull();
    expect(readJpegHeader(file.subarray(0, 100))).toBeNull(); // cut before the frame header
    const twoExif = withSegment(withSegment(file, exifSegment(6, 'II')), exifSegment(3, 'MM'));
    expect(readJpegHeader(twoExif)).toBeNull();
    const zeroHeight = Buffer.from(file);
    const sof = zeroHeight.indexOf(Buffer.from([0xff, 0xc0]));
    zeroHeight.writeUInt16BE(0, sof + 5);
    expect(readJpegHeader(zeroHeight)).toBeNull();
    const badLength = Buffer.from(file);
    badLength.writeUInt16BE(1, 4); // the first segment claims a length below its own length field
    expect(readJpegHeader(badLength)).toBeNull();
  });

  it('gives up where libjpeg would read another frame header than a segment walk would (FF 00, odd markers)', async () => {
    // SOI, then FF 00 with a "length" covering the real 3000×2000 SOF and an APP3 header whose content is a fake
    // 10×10 SOF: libjpeg drops FF 00 and scans on to the next marker, so it decodes the 3000×2000 frame.
    const real = await jpeg(3000, 2000);
    const sofAt = real.indexOf(Buffer.from([0xff, 0xc0]));
    const sof = real.subarray(sofAt, sofAt + 2 + real.readUInt16BE(sofAt + 2));
    const fake = Buffer.from(sof);
    fake.writeUInt16BE(10, 5);
    fake.writeUInt16BE(10, 7);
    const app3 = Buffer.from([0xff, 0xe3, 0, 0]);
    app3.writeUInt16BE(2 + fake.length, 2);
    const ff00 = Buffer.from([0xff, 0x00, 0, 0]);
    ff00.writeUInt16BE(2 + sof.length + app3.length, 2);
    const rest = Buffer.concat([real.subarray(2, sofAt), real.subarray(sofAt + sof.length)]);
    const tricked = Buffer.concat([real.subarray(0, 2), ff00, sof, app3, fake, rest]);
    expect((await sharp(tricked).metadata()).width).toBe(3000); // what libvips decodes
    expect(readJpegHeader(tricked)).toBeNull();
    const bomb = await run(tricked, { maxPixels: 1000, resizeMode: 'no' });
    expect(bomb.ok ? 'ok' : bomb.reason).toBe('too_many_pixels');
    // SOF5 (hierarchical, which libjpeg refuses) and a standalone TEM before the frame: left to libvips too
    for (const marker of [0xc5, 0x01]) {
      const odd = Buffer.concat([real.subarray(0, 2), Buffer.from([0xff, marker, 0, 2]), real.subarray(2)]);
      expect(readJpegHeader(odd), `marker ${marker.toString(16)}`).toBeNull();
    }
  });

  it('gives up on a file that ends before its scan, and on a frame header libjpeg refuses', async () => {
    const file = await jpeg(64, 48, { quality: 50 });
    const sos = file.indexOf(Buffer.from([0xff, 0xda]));
    expect(readJpegHeader(file.subarray(0, sos))).toBeNull();
    const kept = await run(file.subarray(0, sos), { imageSize: 64, resizeMode: 'no', skipReencode: true });
    expect(kept.ok).toBe(false);
    const sofAt = file.indexOf(Buffer.from([0xff, 0xc0]));
    const bogus = Buffer.from(file);
    bogus[sofAt + 9] = 2; // 2 components in a segment sized for 3
    expect(readJpegHeader(bogus)).toBeNull();
    const wide = Buffer.from(file);
    wide.writeUInt16BE(65_501, sofAt + 7);
    expect(readJpegHeader(wide)).toBeNull();
  });

  it('never throws on damaged bytes, and agrees with libvips whenever both read a header', async () => {
    const file = withSegment(await jpeg(80, 60), exifSegment(6, 'MM'));
    let seed = 12345;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    let compared = 0;
    for (let trial = 0; trial < 600; trial++) {
      const damaged = Buffer.from(
        file.subarray(0, random() < 0.5 ? file.length : 2 + Math.floor(random() * file.length)),
      );
      for (let k = 0; k < 3; k++) damaged[2 + Math.floor(random() * 700)] = Math.floor(random() * 256);
      const ours = readJpegHeader(damaged);
      if (ours === null) continue;
      const theirs = await sharp(damaged)
        .metadata()
        .catch(() => null);
      if (theirs === null) {
        // libvips refuses the header (a bad table, say) that our walk accepts: the image must still fail
        const outcome = await run(damaged, { imageSize: 16, resizeMode: 'center_crop' });
        expect(outcome.ok, `trial ${trial}`).toBe(false);
        continue;
      }
      compared++;
      expect(ours, `trial ${trial}`).toEqual({
        width: theirs.width,
        height: theirs.height,
        orientation: theirs.orientation ?? 1,
      });
    }
    expect(compared).toBeGreaterThan(100);
  });

  it('gives processImage the sizes and orientation it used to get from libvips', async () => {
    const tagged = await bands(200, 100, [
      [100, [255, 0, 0]],
      [200, [0, 0, 255]],
    ])
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const out = ok(await run(tagged, { imageSize: 50, resizeMode: 'keep_ratio' }));
    expect([out.originalWidth, out.originalHeight, out.width, out.height]).toEqual([100, 200, 50, 100]);
    // bytes the marker walk gives up on still get libvips' verdict
    const cut = await run((await jpeg(64, 48)).subarray(0, 100));
    expect(cut.ok).toBe(false);
    if (!cut.ok) expect(cut.reason).toBe('decode_error');
  });

  it('spares a plain JPEG the libvips header pass (the point of the walk), and not a PNG', async () => {
    const metadata = vi.spyOn(sharp.prototype, 'metadata');
    try {
      ok(await run(await jpeg(64, 48), { imageSize: 32 }));
      expect(metadata).not.toHaveBeenCalled();
      ok(
        await run(
          await sharp(noise(64, 48), { raw: { width: 64, height: 48, channels: 3 } })
            .png()
            .toBuffer(),
          { imageSize: 32 },
        ),
      );
      expect(metadata).toHaveBeenCalledTimes(1);
    } finally {
      metadata.mockRestore();
    }
  });
});
