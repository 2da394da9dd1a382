/**
 * The .npy header: parse (versions 1.0, 2.0, 3.0) and write (byte-for-byte what `np.save` writes).
 *
 * Layout (numpy/lib/format.py): `\x93NUMPY`, major, minor, header length (u16 LE in 1.0, u32 LE in 2.0/3.0), then
 * a Python dict literal (latin-1, utf-8 in 3.0) padded with spaces and ended by `\n` so the data starts on a
 * 64-byte boundary. The dict is parsed by a small Python-literal parser, not by a regex, so key order, quotes,
 * trailing commas, `(n,)` tuples and Python 2 `3L` integers are all handled as `ast.literal_eval` would.
 */
import { defineError } from '../core/errors.js';

export const npyMalformed = defineError('NPY_MALFORMED');

export type NpyDtype = 'float16' | 'float32';

export interface NpyHeader {
  dtype: NpyDtype;
  littleEndian: boolean;
  /** As written: `[n]` or `[n, d]`. */
  shape: number[];
  fortranOrder: boolean;
  /** Byte offset of the first element (10 + header length in 1.0, 12 + header length in 2.0/3.0). */
  dataOffset: number;
  /** `shape[0]`. */
  rowCount: number;
  /** `shape[1]`, or 1 for a 1-D array (`(n,)` is n rows of one value, as `arr[i]` is in numpy). */
  rowLength: number;
  /** `[major, minor]` of the format. */
  version: [number, number];
}

export const NPY_MAGIC = Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59); // \x93NUMPY
/** numpy's ARRAY_ALIGN: the data starts on a multiple of this. */
const ARRAY_ALIGN = 64;
/** numpy's GROWTH_AXIS_MAX_DIGITS: spare spaces so the row count can grow in place up to 21 digits. */
const GROWTH_AXIS_MAX_DIGITS = 21;
/** A header longer than this is not an embedding file (numpy itself refuses > 10 000 without allow_pickle). */
export const MAX_HEADER_BYTES = 1 << 20;

export function itemSize(dtype: NpyDtype): 2 | 4 {
  return dtype === 'float16' ? 2 : 4;
}

/** Bytes needed before the dict can be parsed: the magic, version and length field (10 or 12), or null if unknown. */
export function npyPreambleLength(bytes: Uint8Array): number | null {
  if (bytes.length < 8) return null;
  return bytes[6] === 1 ? 10 : 12;
}

/** Full header length (= data offset) read from the preamble, after checking magic and version. */
export function npyHeaderLength(bytes: Uint8Array, source: string): number {
  if (bytes.length < 10) {
    throw npyMalformed(`not a .npy file: ${source} is ${bytes.length} bytes, shorter than the 10-byte .npy preamble`, {
      hint: 'Write embeddings with numpy.save(path, array).',
    });
  }
  for (let i = 0; i < NPY_MAGIC.length; i++) {
    if (bytes[i] !== NPY_MAGIC[i]) {
      throw npyMalformed(
        `not a .npy file: ${source} does not start with the \\x93NUMPY magic (found ${printable(bytes.subarray(0, 6))})`,
        { hint: 'Write embeddings with numpy.save(path, array); .npz archives and raw float files are not read.' },
      );
    }
  }
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (!((major === 1 || major === 2 || major === 3) && minor === 0)) {
    throw npyMalformed(`unsupported .npy format version ${major}.${minor} in ${source}: expected 1.0, 2.0 or 3.0`, {
      hint: 'Re-save the array with numpy.save(path, array).',
    });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major === 1) return 10 + view.getUint16(8, true);
  if (bytes.length < 12) {
    throw npyMalformed(`truncated header in ${source}: the file ends inside the .npy preamble`);
  }
  const len = view.getUint32(8, true);
  if (len > MAX_HEADER_BYTES) {
    throw npyMalformed(
      `implausible .npy header length ${len} in ${source}: expected a header under ${MAX_HEADER_BYTES} bytes`,
    );
  }
  return 12 + len;
}

/** Parses the header at the start of `bytes` (which must hold at least the whole header). */
export function parseNpyHeader(bytes: Uint8Array, source: string): NpyHeader {
  const dataOffset = npyHeaderLength(bytes, source);
  const major = bytes[6]!;
  const preamble = major === 1 ? 10 : 12;
  if (bytes.length < dataOffset) {
    throw npyMalformed(
      `truncated header in ${source}: the header needs ${dataOffset} bytes but only ${bytes.length} are present`,
    );
  }
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(preamble, dataOffset));
  let dict: unknown;
  try {
    dict = parsePythonLiteral(text);
  } catch (err) {
    throw npyMalformed(
      `malformed .npy header in ${source}: ${(err as Error).message} in ${JSON.stringify(text.trimEnd())}`,
      {
        cause: err,
      },
    );
  }
  if (!(dict instanceof Map)) {
    throw npyMalformed(`malformed .npy header in ${source}: expected a dict but found ${JSON.stringify(text.trim())}`);
  }
  const keys = [...dict.keys()].sort();
  if (keys.join() !== 'descr,fortran_order,shape') {
    throw npyMalformed(
      `malformed .npy header in ${source}: expected the keys descr, fortran_order, shape but found ${keys.join(', ') || 'none'}`,
    );
  }
  const { dtype, littleEndian } = parseDescr(dict.get('descr'), source);
  const fortran = dict.get('fortran_order');
  if (typeof fortran !== 'boolean') {
    throw npyMalformed(`malformed .npy header in ${source}: fortran_order must be True or False`);
  }
  const shapeValue = dict.get('shape');
  if (!(shapeValue instanceof PyTuple) || !shapeValue.items.every((n) => typeof n === 'bigint' && n >= 0n)) {
    throw npyMalformed(`malformed .npy header in ${source}: shape must be a tuple of non-negative integers`);
  }
  const shape = shapeValue.items.map((n) => {
    const value = Number(n as bigint);
    if (!Number.isSafeInteger(value))
      throw npyMalformed(`malformed .npy header in ${source}: shape ${String(n)} is too large`);
    return value;
  });
  if (shape.length === 0 || shape.length > 2) {
    throw npyMalformed(`expected a 1-D or 2-D array [n, d] in ${source} but found shape ${formatShape(shape)}`, {
      hint: 'Save embeddings as one row per sample: numpy.save(path, arr.reshape(len(arr), -1)).',
    });
  }
  return {
    dtype,
    littleEndian,
    shape,
    fortranOrder: fortran,
    dataOffset,
    rowCount: shape[0]!,
    rowLength: shape.length === 2 ? shape[1]! : 1,
    version: [major, 0],
  };
}

/** Python's repr of a shape tuple: `(5,)`, `(5, 4)`. */
export function formatShape(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

const KIND_NAMES: Record<string, string> = {
  f2: 'float16',
  f4: 'float32',
  f8: 'float64',
  f16: 'float128',
  f12: 'float96',
  i1: 'int8',
  i2: 'int16',
  i4: 'int32',
  i8: 'int64',
  u1: 'uint8',
  u2: 'uint16',
  u4: 'uint32',
  u8: 'uint64',
  b1: 'bool',
  c8: 'complex64',
  c16: 'complex128',
  c32: 'complex256',
};

function dtypeName(code: string): string {
  if (KIND_NAMES[code]) return KIND_NAMES[code];
  switch (code[0]) {
    case 'U':
      return `str (unicode ${code})`;
    case 'S':
      return `bytes (${code})`;
    case 'O':
      return 'Python objects (dtype=object)';
    case 'V':
      return `void (${code})`;
    case 'M':
      return `datetime64 (${code})`;
    case 'm':
      return `timedelta64 (${code})`;
    default:
      return `dtype '${code}'`;
  }
}

function parseDescr(descr: unknown, source: string): { dtype: NpyDtype; littleEndian: boolean } {
  const advice = "convert with arr.astype('float16') (or 'float32') and numpy.save";
  if (typeof descr !== 'string') {
    throw npyMalformed(
      `expected float16 or float32 embeddings in ${source} but the file holds a structured dtype; ${advice}`,
    );
  }
  const match = /^([<>|=]?)([a-zA-Z]\d*(?:\[\w+\])?)$/.exec(descr);
  if (!match) throw npyMalformed(`malformed .npy header in ${source}: unreadable descr '${descr}'`);
  const order = match[1]!;
  const code = match[2]!;
  if (code === 'f2' || code === 'f4') {
    // '|' has no byte order: numpy only writes it for 1-byte types, so reading it on a float is a guess; refuse.
    if (order === '|') throw npyMalformed(`malformed .npy header in ${source}: descr '${descr}' has no byte order`);
    const littleEndian = order === '>' ? false : order === '<' ? true : HOST_LITTLE_ENDIAN;
    return { dtype: code === 'f2' ? 'float16' : 'float32', littleEndian };
  }
  throw npyMalformed(
    `expected float16 or float32 embeddings in ${source} but the file holds ${dtypeName(code)}; ${advice}`,
  );
}

export const HOST_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

function printable(bytes: Uint8Array): string {
  return JSON.stringify(
    Array.from(bytes, (b) =>
      b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`,
    ).join(''),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

/**
 * The header bytes numpy writes for a C-order little-endian array: the sorted-key dict, 21 − digits(rows) spare
 * spaces (so the row count can be rewritten in place), space padding to a 64-byte boundary and `\n`. Version 1.0
 * unless the header needs more than 65 535 bytes.
 */
export function encodeNpyHeader(shape: readonly number[], dtype: NpyDtype | 'uint8'): Uint8Array {
  const descr = { float16: '<f2', float32: '<f4', uint8: '|u1' }[dtype];
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${formatShape(shape)}, }`;
  if (shape.length > 0) dict += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length));
  for (const version of [1, 2] as const) {
    const preamble = version === 1 ? 10 : 12;
    const hlen = dict.length + 1;
    const padlen = ARRAY_ALIGN - ((preamble + hlen) % ARRAY_ALIGN);
    const total = hlen + padlen;
    if (version === 1 && total > 0xffff) continue;
    const out = new Uint8Array(preamble + total);
    out.set(NPY_MAGIC, 0);
    out[6] = version;
    out[7] = 0;
    const view = new DataView(out.buffer);
    if (version === 1) view.setUint16(8, total, true);
    else view.setUint32(8, total, true);
    for (let i = 0; i < dict.length; i++) out[preamble + i] = dict.charCodeAt(i);
    out.fill(0x20, preamble + dict.length, out.length - 1);
    out[out.length - 1] = 0x0a;
    return out;
  }
  throw new Error('unreachable: a 2-D header always fits format 2.0');
}

// ---------------------------------------------------------------------------------------------------------------
// A small parser for the Python literals a .npy header holds (what ast.literal_eval accepts for it): dicts, tuples,
// lists, str (with u/b prefixes and escapes), int (incl. Python 2 `3L`), True, False, None.

export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

export function parsePythonLiteral(text: string): unknown {
  let pos = 0;
  const fail = (what: string): never => {
    throw new Error(`${what} at character ${pos}`);
  };
  const skipSpace = () => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };
  const expect = (ch: string) => {
    skipSpace();
    if (text[pos] !== ch) fail(`expected '${ch}' but found ${text[pos] === undefined ? 'the end' : `'${text[pos]}'`}`);
    pos++;
  };
  // Reads items up to `close`, allowing one trailing comma. Returns the items and whether any comma was seen.
  const sequence = (close: string, item: () => void): boolean => {
    let commas = false;
    for (;;) {
      skipSpace();
      if (text[pos] === close) {
        pos++;
        return commas;
      }
      item();
      skipSpace();
      if (text[pos] === ',') {
        pos++;
        commas = true;
      } else if (text[pos] !== close) {
        fail(`expected ',' or '${close}'`);
      }
    }
  };
  const value = (): unknown => {
    skipSpace();
    const ch = text[pos];
    if (ch === undefined) return fail('unexpected end');
    if (ch === '{') {
      pos++;
      const map = new Map<unknown, unknown>();
      sequence('}', () => {
        const key = value();
        if (typeof key !== 'string') fail('dict keys must be strings');
        expect(':');
        if (map.has(key)) fail(`duplicate key '${String(key)}'`);
        map.set(key, value());
      });
      return map;
    }
    if (ch === '(') {
      pos++;
      const items: unknown[] = [];
      const commas = sequence(')', () => items.push(value()));
      // `(5)` is just 5 in Python; only `(5,)` is a tuple.
      if (items.length === 1 && !commas) return items[0];
      return new PyTuple(items);
    }
    if (ch === '[') {
      pos++;
      const items: unknown[] = [];
      sequence(']', () => items.push(value()));
      return items;
    }
    const str = /^[uUbB]?(['"])/.exec(text.slice(pos, pos + 2));
    if (str) {
      pos += str[0].length;
      return stringBody(str[1]!);
    }
    const num = /^[+-]?\d+[lL]?/.exec(text.slice(pos));
    if (num) {
      pos += num[0].length;
      const digits = num[0].replace(/[lL]$/, '');
      if (/^[+-]?0\d/.test(digits)) fail('leading zeros in an integer');
      if (/^[.eEjJxXoObB_]/.test(text[pos] ?? '')) fail('only integers are expected');
      return BigInt(digits);
    }
    const word = /^[A-Za-z_]\w*/.exec(text.slice(pos));
    if (word) {
      pos += word[0].length;
      if (word[0] === 'True') return true;
      if (word[0] === 'False') return false;
      if (word[0] === 'None') return null;
      pos -= word[0].length;
      return fail(`unexpected name '${word[0]}'`);
    }
    return fail(`unexpected '${ch}'`);
  };
  const stringBody = (quote: string): string => {
    let out = '';
    for (;;) {
      const ch = text[pos++];
      if (ch === undefined || ch === '\n') return fail('unterminated string');
      if (ch === quote) return out;
      if (ch !== '\\') {
        out += ch;
        continue;
      }
      const esc = text[pos++];
      switch (esc) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case '0':
          out += '\0';
          break;
        case '\\':
        case "'":
        case '"':
          out += esc;
          break;
        case 'x':
        case 'u': {
          const len = esc === 'x' ? 2 : 4;
          const hex = text.slice(pos, pos + len);
          if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) fail('bad escape');
          out += String.fromCharCode(parseInt(hex, 16));
          pos += len;
          break;
        }
        default:
          out += `\\${esc ?? ''}`;
      }
    }
  };
  const result = value();
  skipSpace();
  if (pos !== text.length) fail('trailing characters');
  return result;
}
