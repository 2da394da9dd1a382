export type SniffedFormat = 'jpg' | 'png' | 'webp' | 'gif' | 'avif' | 'tiff' | 'bmp';

/** Identifies raster image bytes by their magic numbers. Anything else (HTML, SVG, JSON…) is not an image. */
export function sniffImageFormat(bytes: Uint8Array): SniffedFormat | null {
  const at = (offset: number, ...values: number[]) => values.every((v, i) => bytes[offset + i] === v);
  const ascii = (offset: number, text: string) => at(offset, ...[...text].map((c) => c.charCodeAt(0)));
  if (bytes.length < 12) return null;
  if (at(0, 0xff, 0xd8, 0xff)) return 'jpg';
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'png';
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return 'webp';
  if (ascii(0, 'GIF87a') || ascii(0, 'GIF89a')) return 'gif';
  if (ascii(4, 'ftyp') && (ascii(8, 'avif') || ascii(8, 'avis') || ascii(8, 'mif1'))) return 'avif';
  if (at(0, 0x49, 0x49, 0x2a, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2a)) return 'tiff';
  if (ascii(0, 'BM')) return 'bmp';
  return null;
}
