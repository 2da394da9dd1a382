import { EXIF_TAGS, type TagSpec, type TagTable } from './exif-tags.js';
import { fractionText, jsonDumpsAscii, pyBytesRepr, pyFloatRepr, pyStrip, pyStrRepr } from './exif-print.js';
import { isExif, walkJpegSegments } from './jpeg-header.js';

/**
 * img2dataset's `exif` field: `json.dumps({name: str(tag).strip()})` over `exifread.process_file(original bytes,
 * details=False)` (exifread-nocycle 3.0.1, the version img2dataset 1.47 installs). Same tag names ("Image Make",
 * "EXIF ExposureTime", "GPS GPSLatitude", "Thumbnail …"), order and value texts, including exifread's quirks:
 * one-byte values (BYTE, UNDEFINED, SBYTE) read as 0, so "EXIF ExifVersion" is "" and "GPS GPSVersionID" is
 * "[0, 0, 0, 0]". MakerNote, UserComment and XP ApplicationNotes are skipped (details=False). "{}" for an image
 * without EXIF (PNG, GIF…); null where exifread raises (an unknown byte order, a value cut by the end of the file).
 *
 * Hostile bytes: everything is read from the given buffer with bounds checks; at most MAX_IFDS directories,
 * MAX_TAGS tags and MAX_VALUES values are read, a text value holds at most MAX_TEXT characters and the result at
 * most MAX_OUTPUT: past a bound the tags read so far are returned.
 */
export function exifJson(bytes: Uint8Array): string | null {
  const found = findTiffBlock(bytes);
  if (found === null) return '{}';
  const { start } = found;
  const order = bytes[start];
  // exifread's byte orders: I(ntel), M(otorola), Adobe Ducky (\x01), XMP ('d'); anything else raises
  if (order !== 0x49 && order !== 0x4d && order !== 0x01 && order !== 0x64) return null;
  const reader = new TiffReader(bytes.subarray(start), order === 0x49);
  try {
    return jsonDumpsAscii(reader.readAll());
  } catch (err) {
    if (err instanceof Truncated) return null;
    throw err;
  }
}

const MAX_IFDS = 64;
const MAX_TAGS = 4096;
const MAX_VALUES = 100_000;
/** An APP1 segment holds at most 65 533 bytes: a real JPEG's text tag never reaches this. */
const MAX_TEXT = 65_536;
const MAX_OUTPUT = 1 << 20;
/** exifread reads at most 999 values of a tag; more print as "[]". */
const MAX_COUNT = 1000;
/** Bytes exifread looks through for the APP1 "Exif" segment, after a leading JFIF-like segment. */
const JPEG_SEARCH_WINDOW = 4000;

/** Byte length of each TIFF field type (exifread's FIELD_TYPES); 0 = unknown, skipped. */
const TYPE_LENGTH = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4];
const SIGNED_TYPES = new Set([6, 8, 9, 10]);
/** Tags exifread skips with details=False: XMP ApplicationNotes, MakerNote, UserComment. */
const SKIPPED_TAGS = new Set([0x02bc, 0x927c, 0x9286]);

/** A read that reaches past the end of the data, where exifread's struct.unpack raises. */
class Truncated extends Error {}

/** Where exifread finds the TIFF header: the file itself (TIFF), a WebP EXIF chunk, a JPEG APP1 "Exif". */
function findTiffBlock(bytes: Uint8Array): { start: number } | null {
  const ascii = (at: number, text: string) => [...text].every((c, i) => bytes[at + i] === c.charCodeAt(0));
  if (bytes.length < 12) return null;
  if (ascii(0, 'II') || ascii(0, 'MM')) return { start: 0 };
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return webpExif(bytes, ascii);
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return jpegExif(bytes);
  return null;
}

/**
 * exifread's WebP search: a VP8X first chunk (it tests a bit of the chunk size, always set for VP8X's 10 bytes),
 * then chunks of `8 + size` bytes (no RIFF padding) until one named EXIF.
 */
function webpExif(bytes: Uint8Array, ascii: (at: number, text: string) => boolean): { start: number } | null {
  if (!ascii(12, 'VP8X') || (bytes[16]! & 8) === 0) return null;
  let at = 30;
  for (let chunks = 0; chunks < 1024 && at + 8 <= bytes.length; chunks++) {
    if (ascii(at, 'EXIF')) return { start: at + 8 };
    at += 8 + (bytes[at + 4]! | (bytes[at + 5]! << 8) | (bytes[at + 6]! << 16)) + bytes[at + 7]! * 0x1000000;
  }
  return null;
}

/**
 * The first APP1 starting "Exif" before the quantisation tables (exifread stops at DQT), within the 4000 bytes
 * exifread reads after leading JFIF / JFXX / OLYM / Phot segments. The TIFF header follows "Exif\0\0".
 */
function jpegExif(bytes: Uint8Array): { start: number } | null {
  let windowStart = 2;
  let windowEnd = -1;
  let found: number | null = null;
  walkJpegSegments(bytes, ({ marker, body, length }) => {
    const at = body - 4;
    if (windowEnd < 0) {
      if (at === windowStart && isJfifLike(bytes, body)) {
        windowStart = body + length;
        return true;
      }
      windowEnd = Math.min(bytes.length, windowStart + JPEG_SEARCH_WINDOW);
    }
    if (marker === 0xdb || at + 8 > windowEnd) return false;
    if (marker === 0xe1 && isExif(bytes, body, length)) {
      found = body + 6;
      return false;
    }
    return true;
  });
  return found === null ? null : { start: found };
}

function isJfifLike(bytes: Uint8Array, body: number): boolean {
  const id = String.fromCharCode(...bytes.subarray(body + 2, body + 6));
  return id === 'JFIF' || id === 'JFXX' || id === 'OLYM' || id === 'Phot';
}

/**
 * One value as exifread holds it: its `str()` text, its integer value when it equals one (a dict lookup finds
 * Fraction(6, 1) under 6), and whether it is an int (make_string takes only ints as characters).
 */
interface Value {
  text: string;
  int: number | undefined;
  isInt: boolean;
}

/** exifread's ExifHeader over one TIFF structure, with the bounds above. */
class TiffReader {
  private readonly tags = new Map<string, string>();
  private tagsRead = 0;
  private valuesRead = 0;
  private outputSize = 0;

  constructor(
    private readonly data: Uint8Array,
    private readonly little: boolean,
  ) {}

  /** IFD0 "Image", IFD1 "Thumbnail", "IFD n"…, then the EXIF sub-IFD named by "Image ExifOffset". */
  readAll(): [string, string][] {
    const seen = new Set<number>();
    let ifd = this.uint(4, 4);
    for (let n = 0; ifd !== 0 && !seen.has(ifd) && n < MAX_IFDS; n++) {
      seen.add(ifd);
      this.dumpIfd(ifd, n === 0 ? 'Image' : n === 1 ? 'Thumbnail' : `IFD ${n}`, EXIF_TAGS);
      const next = this.uint(ifd + 2 + 12 * this.uint(ifd, 2), 4);
      ifd = next === ifd ? 0 : next;
    }
    if (this.exifOffset === 'missing') throw new Truncated(); // exifread's values[0] of an empty list
    if (this.exifOffset !== undefined) this.dumpIfd(this.exifOffset, 'EXIF', EXIF_TAGS);
    return [...this.tags];
  }

  /** The first value of "Image ExifOffset", where the EXIF sub-IFD is. */
  private exifOffset: number | 'missing' | undefined;

  private dumpIfd(ifd: number, ifdName: string, table: TagTable, depth = 0): void {
    const entries = this.uint(ifd, 2);
    for (let i = 0; i < entries; i++) {
      const entry = ifd + 2 + 12 * i;
      // past the data every entry reads as tag 0 of type 0, which exifread skips
      if (
        entry >= this.data.length ||
        this.tagsRead >= MAX_TAGS ||
        this.valuesRead >= MAX_VALUES ||
        this.outputSize >= MAX_OUTPUT
      )
        return;
      this.tagsRead++;
      const tag = this.uint(entry, 2);
      if (SKIPPED_TAGS.has(tag)) continue;
      const spec = table.get(tag);
      this.readTag(entry, ifdName, spec ?? { name: `Tag 0x${tag.toString(16).toUpperCase().padStart(4, '0')}` }, depth);
    }
  }

  private readTag(entry: number, ifdName: string, spec: TagSpec, depth: number): void {
    const type = this.uint(entry + 2, 2);
    const length = TYPE_LENGTH[type] ?? 0;
    if (length === 0) return; // unknown field type: skipped
    const count = this.uint(entry + 4, 4);
    const offset = count * length > 4 ? this.uint(entry + 8, 4) : entry + 8;
    const values = type === 2 ? this.text(offset, count) : this.values(offset, count, type, length);
    let printable = printValues(values, count, type);
    if (spec.makeString) printable = makeString(values);
    else if (spec.lookup) printable = lookupText(values, spec.lookup);
    else if (spec.subIfd && Array.isArray(values) && values[0]?.int !== undefined && depth < 2) {
      this.dumpIfd(values[0].int, spec.subIfd.name, spec.subIfd.tags, depth + 1);
    }
    const name = `${ifdName} ${spec.name}`;
    if (name === 'Image ExifOffset')
      this.exifOffset = Array.isArray(values) ? (values[0]?.int ?? 'missing') : undefined;
    const text = pyStrip(printable);
    this.outputSize += name.length + text.length;
    this.tags.set(name, text);
  }

  /** An ASCII value: up to the first NUL, UTF-8, or the bytes themselves when they are not UTF-8. */
  private text(offset: number, count: number): string | Uint8Array {
    if (count === 0) return '';
    const raw = this.data.subarray(offset, offset + Math.min(count, MAX_TEXT));
    const nul = raw.indexOf(0);
    const cut = nul === -1 ? raw : raw.subarray(0, nul);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(cut);
    } catch {
      return cut;
    }
  }

  private values(offset: number, count: number, type: number, length: number): Value[] {
    if (count >= MAX_COUNT) return [];
    const signed = SIGNED_TYPES.has(type);
    const out: Value[] = [];
    for (let i = 0; i < count; i++, offset += length) {
      this.valuesRead++;
      if (type === 5 || type === 10) {
        const num = this.int(offset, 4, signed);
        const den = this.int(offset + 4, 4, signed);
        out.push({
          text: fractionText(num, den),
          int: den !== 0 && num % den === 0 ? num / den : undefined,
          isInt: false,
        });
      } else if (type === 11 || type === 12) {
        out.push({ text: `(${pyFloatRepr(this.float(offset, type === 11 ? 4 : 8))},)`, int: undefined, isInt: false });
      } else {
        const v = this.int(offset, length, signed);
        out.push({ text: String(v), int: v, isInt: true });
      }
    }
    return out;
  }

  private uint(offset: number, length: number): number {
    return this.int(offset, length, false);
  }

  /** exifread's s2n: 0 past the end and for every one-byte read (its `len(buf) >= 2` test); a cut read raises. */
  private int(offset: number, length: number, signed: boolean): number {
    if (offset >= this.data.length || length === 1) return 0;
    if (offset + length > this.data.length) {
      if (this.data.length - offset < 2) return 0;
      throw new Truncated();
    }
    const view = new DataView(this.data.buffer, this.data.byteOffset + offset, length);
    if (length === 2) return signed ? view.getInt16(0, this.little) : view.getUint16(0, this.little);
    return signed ? view.getInt32(0, this.little) : view.getUint32(0, this.little);
  }

  private float(offset: number, length: 4 | 8): number {
    if (offset + length > this.data.length) throw new Truncated();
    const view = new DataView(this.data.buffer, this.data.byteOffset + offset, length);
    return length === 4 ? view.getFloat32(0, this.little) : view.getFloat64(0, this.little);
  }
}

/** exifread's printable: one value as itself, a long list cut after 20 values, otherwise `str(list)`. */
function printValues(values: Value[] | string | Uint8Array, count: number, type: number): string {
  if (typeof values === 'string') return values;
  if (values instanceof Uint8Array) return pyBytesRepr(values);
  if (count === 1 && type !== 2 && values.length > 0) return values[0]!.text;
  if (count > 50 && values.length > 20)
    return `[${values
      .slice(0, 20)
      .map((v) => v.text)
      .join(', ')}, ... ]`;
  return `[${values.map((v) => v.text).join(', ')}]`;
}

/** exifread's make_string: the characters 32–255 of the values; else their texts joined, "" if all zeros. */
function makeString(values: Value[] | string | Uint8Array): string {
  if (typeof values === 'string') return stripSpaceNul(values);
  const codes = values instanceof Uint8Array ? [...values] : values.map((v) => (v.isInt ? v.int : undefined));
  let text = codes.map((c) => (c !== undefined && c >= 32 && c < 256 ? String.fromCharCode(c) : '')).join('');
  if (text === '') {
    if (values instanceof Uint8Array) text = pyBytesRepr(values);
    else {
      text = values.map((v) => v.text).join('');
      if (text !== '' && /^0+$/.test(text)) return '';
    }
  }
  return stripSpaceNul(text);
}

function stripSpaceNul(text: string): string {
  return text.replace(/^[ \0]+|[ \0]+$/g, '');
}

/** A tag with named values: each value's name, or its repr when the table has none. */
function lookupText(values: Value[] | string | Uint8Array, lookup: Readonly<Record<number, string>>): string {
  if (typeof values === 'string') return [...values].map(pyStrRepr).join('');
  const name = (int: number | undefined, text: string) =>
    int !== undefined && Object.hasOwn(lookup, int) ? lookup[int]! : text;
  if (values instanceof Uint8Array) return [...values].map((b) => name(b, String(b))).join('');
  return values.map((v) => name(v.int, v.text)).join('');
}
