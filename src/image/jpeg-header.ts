/** What processImage needs from a JPEG before decoding it: its stored size and its EXIF orientation. */
export interface JpegHeader {
  width: number;
  height: number;
  /** EXIF orientation 1–8; 1 when there is no EXIF or no valid tag (as libvips). */
  orientation: number;
}

/** libjpeg's JPEG_MAX_DIMENSION: a larger side is an error there, reading or writing. */
export const JPEG_MAX_DIMENSION = 65_500;

/**
 * Reads the frame size and the EXIF orientation from a JPEG's markers, without decoding anything: it saves
 * processImage a second pass through libvips (sharp's metadata() costs as much CPU as the resize's own header
 * read). Returns null for anything it does not fully understand (no SOI, a marker libjpeg would not step over
 * the same way, a truncated or inconsistent segment, no scan, a frame header libjpeg would refuse, two EXIF
 * blocks, an EXIF block libexif may read otherwise): the caller then asks libvips, which also produces the decode error message.
 *
 * Walks the segments up to the first SOS as libjpeg's read_markers does, and only over the markers it accepts
 * there: a walk that stepped over a marker libjpeg scans past could read another frame header than the one
 * decoded (and the pixel limit would check the wrong size). All lengths are bounds-checked against the buffer,
 * so hostile bytes cost at most one pass over the headers.
 */
export function readJpegHeader(bytes: Uint8Array): JpegHeader | null {
  let size: { width: number; height: number } | undefined;
  let orientation: number | undefined;
  let exifBlocks = 0;
  let bad = false;
  const refuse = () => {
    bad = true;
    return false;
  };
  const end = walkJpegSegments(bytes, ({ marker, body, length }) => {
    if (isStartOfFrame(marker)) {
      if (size !== undefined || length < 6) return refuse();
      const height = (bytes[body + 1]! << 8) | bytes[body + 2]!;
      const width = (bytes[body + 3]! << 8) | bytes[body + 4]!;
      const components = bytes[body + 5]!;
      // libjpeg: "Bogus marker length" unless the length matches the component count
      if (components === 0 || length !== 6 + 3 * components) return refuse();
      // height 0 = defined later by a DNL marker
      if (width === 0 || height === 0 || width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION) return refuse();
      size = { width, height };
    } else if (marker === 0xe1 && isExif(bytes, body, length)) {
      exifBlocks += 1;
      // libvips takes the first APP1 that starts "Exif" as the EXIF block, whatever follows those 4 bytes
      if (exifBlocks > 1 || bytes[body + 4] !== 0 || bytes[body + 5] !== 0) return refuse();
      const tag = exifOrientation(bytes, body + 6, length - 6);
      if (tag === 'unknown') return refuse();
      orientation = tag;
    }
    return true;
  });
  if (bad || end !== 'scan' || size === undefined) return null;
  return { ...size, orientation: orientation ?? 1 };
}

/** One marker segment: `body` is the offset of its first byte after the length field, `length` its byte count. */
export interface JpegSegment {
  marker: number;
  body: number;
  length: number;
}

/**
 * Walks a JPEG's marker segments from SOI up to the first SOS (the scan, not visited), as libjpeg's read_markers
 * does and only over the markers it accepts there; every length is checked against the buffer, so hostile bytes
 * cost at most one pass over the headers. `visit` returns false to stop early. Ends with 'scan' at the SOS,
 * 'stopped' when the visitor stopped, 'broken' at anything else (no SOI, a marker libjpeg would not step over the
 * same way, a truncated segment, no scan).
 */
export function walkJpegSegments(
  bytes: Uint8Array,
  visit: (segment: JpegSegment) => boolean,
): 'scan' | 'stopped' | 'broken' {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return 'broken';
  let i = 2;
  for (;;) {
    if (i + 3 >= bytes.length || bytes[i] !== 0xff) return 'broken'; // no scan (truncated), or not at a marker
    const marker = bytes[i + 1]!;
    if (marker === 0xff) {
      i += 1; // fill byte before a marker
      continue;
    }
    if (!isHeaderSegment(marker)) return 'broken';
    const length = (bytes[i + 2]! << 8) | bytes[i + 3]!;
    if (length < 2 || i + 2 + length > bytes.length) return 'broken';
    if (marker === 0xda) return 'scan'; // SOS: the entropy-coded data starts; every header has been seen
    if (!visit({ marker, body: i + 4, length: length - 2 })) return 'stopped';
    i += 2 + length;
  }
}

/**
 * The segments libjpeg's read_markers steps over by their length before the first scan: SOF0–3 and SOF9–11
 * (the frame types it decodes), DHT, DAC, DQT, DRI, DNL, APPn, COM, and SOS itself.
 */
function isHeaderSegment(marker: number): boolean {
  return (
    isStartOfFrame(marker) ||
    marker === 0xc4 || // DHT
    marker === 0xcc || // DAC
    (marker >= 0xda && marker <= 0xdd) || // SOS, DQT, DNL, DRI
    (marker >= 0xe0 && marker <= 0xef) || // APPn
    marker === 0xfe // COM
  );
}

/** The frame headers libjpeg decodes: baseline, extended, progressive, lossless (C0–C3), arithmetic (C9–CB). */
function isStartOfFrame(marker: number): boolean {
  return (marker >= 0xc0 && marker <= 0xc3) || (marker >= 0xc9 && marker <= 0xcb);
}

/** An APP1 body that starts "Exif" (the EXIF header proper is "Exif\0\0"). */
export function isExif(bytes: Uint8Array, body: number, length: number): boolean {
  return (
    length >= 6 &&
    bytes[body] === 0x45 &&
    bytes[body + 1] === 0x78 &&
    bytes[body + 2] === 0x69 &&
    bytes[body + 3] === 0x66
  );
}

/**
 * The Orientation tag (0x0112) of IFD0 in a TIFF structure at [start, start + length); undefined when absent or
 * out of 1–8 (libvips then treats the image as upright); 'unknown' when stored in a form other than one SHORT or
 * LONG (libexif converts more forms than we want to mirror).
 */
function exifOrientation(bytes: Uint8Array, start: number, length: number): number | undefined | 'unknown' {
  if (length < 8) return undefined;
  const little = bytes[start] === 0x49 && bytes[start + 1] === 0x49;
  const big = bytes[start] === 0x4d && bytes[start + 1] === 0x4d;
  if (!little && !big) return undefined;
  const u16 = (at: number) =>
    little ? bytes[start + at]! | (bytes[start + at + 1]! << 8) : (bytes[start + at]! << 8) | bytes[start + at + 1]!;
  const u32 = (at: number) => (little ? u16(at) + u16(at + 2) * 0x10000 : u16(at) * 0x10000 + u16(at + 2));
  if (u16(2) !== 42) return undefined;
  const ifd = u32(4);
  if (ifd + 2 > length) return undefined;
  if (ifd < 8) return 'unknown'; // overlaps the TIFF header, which libexif reads all the same
  const entries = u16(ifd);
  for (let e = 0; e < entries; e++) {
    const entry = ifd + 2 + e * 12;
    if (entry + 12 > length) return undefined;
    if (u16(entry) !== 0x0112) continue;
    // one SHORT or one LONG: the value sits in the value field itself
    const type = u16(entry + 2);
    if ((type !== 3 && type !== 4) || u32(entry + 4) !== 1) return 'unknown';
    const value = type === 3 ? u16(entry + 8) : u32(entry + 8);
    if (value > 0xffff) return 'unknown'; // libexif turns a LONG orientation into a SHORT (its low 16 bits)
    return value >= 1 && value <= 8 ? value : undefined;
  }
  return undefined;
}
