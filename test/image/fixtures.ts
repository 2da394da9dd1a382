import { crc32 } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { expect } from 'vitest';
import type { ImageOutcome } from '../../src/core/types.js';
import { defaultImageOptions, processImage, type ImageOptions } from '../../src/image/index.js';

export type Rgb = [number, number, number];

export const run = (bytes: Buffer, o: Partial<ImageOptions> = {}) =>
  processImage(bytes, { ...defaultImageOptions, ...o });

export function ok(outcome: ImageOutcome) {
  if (!outcome.ok) throw new Error(`expected success, got ${outcome.reason}: ${outcome.message}`);
  return outcome;
}

export const solid = (
  width: number,
  height: number,
  format: 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' = 'png',
  background = '#ff0000',
) =>
  sharp({ create: { width, height, channels: 3, background } })
    .toFormat(format)
    .toBuffer();

/** Deterministic noise: a JPEG of it is mostly entropy-coded data, as a photo is. */
export function noise(width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (Math.imul(i, 2654435761) >>> 13) & 255;
  return data;
}

/** An image made of vertical bands, one colour per column range: bands[i] = [untilX, colour]. */
export function bands(width: number, height: number, columns: [until: number, colour: Rgb][]): Sharp {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const colour = columns.find(([until]) => x < until)![1];
      data.set(colour, (y * width + x) * 3);
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } });
}

/** Decoded RGB pixels of an encoded image, with a pixel reader. */
export async function pixels(encoded: Buffer) {
  const { data, info } = await sharp(encoded).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number): Rgb => {
    const i = (y * info.width + x) * info.channels;
    return [data[i]!, data[i + 1]!, data[i + 2]!];
  };
  return { width: info.width, height: info.height, channels: info.channels, at };
}

export function expectColour(actual: Rgb, expected: Rgb, tolerance = 2) {
  actual.forEach((v, i) =>
    expect(Math.abs(v - expected[i]!), `${JSON.stringify(actual)} ≈ ${JSON.stringify(expected)}`).toBeLessThanOrEqual(
      tolerance,
    ),
  );
}

/** Rewrites a PNG's IHDR size (and its CRC): a valid header that declares a pixel bomb. */
export function withPngSize(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29); // CRC over 'IHDR' + 13 data bytes
  return out;
}

/** Rewrites a JPEG's frame header (SOF0–SOF2) size. */
export function withJpegSize(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  let pos = 2;
  while (pos + 4 < out.length && out[pos] === 0xff) {
    const marker = out[pos + 1]!;
    if (marker >= 0xc0 && marker <= 0xc2) {
      out.writeUInt16BE(height, pos + 5);
      out.writeUInt16BE(width, pos + 7);
      return out;
    }
    pos += 2 + out.readUInt16BE(pos + 2);
  }
  throw new Error('no SOF marker');
}
