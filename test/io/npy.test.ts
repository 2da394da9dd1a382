import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  NativeFloat16Array,
  encodeNpy,
  float16BitsToFloat32,
  float16BitsToFloat32Array,
  float32ToFloat16Bits,
  float32ToFloat16BitsArray,
  openNpy,
  parseNpyHeader,
  parsePythonLiteral,
  writeNpy,
  type Float16Impl,
} from '../../src/io/npy.js';
import { PyTuple } from '../../src/io/npy-header.js';
import { ClipstreamError } from '../../src/core/errors.js';
import { tempDir } from '../helpers/tmp.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/npy/', import.meta.url));
const fixture = (name: string) => join(FIXTURES, name);
/** Math.f16round (Node ≥ 24), not in the ES2023 lib types: float16 rounding of a double, as numpy's astype. */
const f16round = (Math as unknown as { f16round: (x: number) => number }).f16round;
const sevenths = (from: number, to: number, round: (x: number) => number) =>
  Array.from({ length: to - from }, (_, i) => round((from + i) / 7));

async function expectError(promise: Promise<unknown> | (() => unknown), code: string, ...parts: (string | RegExp)[]) {
  let error: unknown;
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    error = err;
  }
  expect(error, `expected a ${code} error`).toBeInstanceOf(ClipstreamError);
  const e = error as ClipstreamError;
  expect(e.code, e.message).toBe(code);
  for (const part of parts) expect(e.message).toMatch(part);
  return e;
}

/** A .npy preamble + dict text, padded as numpy does (the dict is written as given). */
function craft(dict: string, version: 1 | 2 | 3 | 4 = 1, data = new Uint8Array(0), magic = '\x93NUMPY'): Uint8Array {
  const preamble = version === 1 ? 10 : 12;
  const total = Math.ceil((preamble + dict.length + 1) / 64) * 64 - preamble;
  const out = new Uint8Array(preamble + total + data.length);
  for (let i = 0; i < 6; i++) out[i] = magic.charCodeAt(i);
  out[6] = version;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, total, true);
  else view.setUint32(8, total, true);
  const text = dict.padEnd(total - 1, ' ') + '\n';
  for (let i = 0; i < text.length; i++) out[preamble + i] = text.charCodeAt(i);
  out.set(data, preamble + total);
  return out;
}

/** Raw float16 bits of a float16 fixture (host = little-endian). */
async function rawBits(name: string): Promise<Uint16Array> {
  const bytes = new Uint8Array(await readFile(fixture(name)));
  const header = parseNpyHeader(bytes, name);
  return new Uint16Array(bytes.slice(header.dataOffset).buffer);
}

/** A little-endian float32 fixture's values, read around openNpy (which refuses the NaN and ±Infinity they hold). */
async function rawFloats(name: string): Promise<Float32Array> {
  const bytes = new Uint8Array(await readFile(fixture(name)));
  const header = parseNpyHeader(bytes, name);
  expect(header.dtype).toBe('float32');
  return new Float32Array(bytes.slice(header.dataOffset).buffer);
}

const isNanBits = (bits: number) => (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0;
const IMPLS: Float16Impl[] = NativeFloat16Array ? ['manual', 'native'] : ['manual'];

describe('npy reader on numpy fixtures', () => {
  it('reads float32 (5, 4): header and exact values, whole and by range', async () => {
    const npy = await openNpy(fixture('f32_2d.npy'));
    try {
      expect(npy.header).toEqual({
        dtype: 'float32',
        littleEndian: true,
        shape: [5, 4],
        fortranOrder: false,
        dataOffset: 128,
        rowCount: 5,
        rowLength: 4,
        version: [1, 0],
      });
      expect(Array.from(await npy.readRows(0, 5))).toEqual(sevenths(0, 20, Math.fround));
      expect(Array.from(await npy.readRows(1, 3))).toEqual(sevenths(4, 12, Math.fround));
      expect(await npy.readRows(2, 2)).toHaveLength(0);
    } finally {
      await npy.close();
    }
  });

  it("reads float16 (6, 3) as float32 with numpy's rounding", async () => {
    const npy = await openNpy(fixture('f16_2d.npy'));
    expect(npy.header).toMatchObject({ dtype: 'float16', shape: [6, 3], rowLength: 3 });
    expect(Array.from(await npy.readRows(0, 6))).toEqual(sevenths(0, 18, f16round));
    expect(Array.from(await npy.readRows(5, 6))).toEqual(sevenths(15, 18, f16round));
    await npy.close();
  });

  it('reads a 1-D (n,) array as n rows of one value', async () => {
    const npy = await openNpy(fixture('f32_1d.npy'));
    expect(npy.header).toMatchObject({ shape: [7], rowCount: 7, rowLength: 1 });
    expect(Array.from(await npy.readRows(2, 5))).toEqual(sevenths(2, 5, Math.fround));
    await npy.close();
  });

  it('reads a Fortran-order array as rows, whole and by range', async () => {
    const npy = await openNpy(fixture('f32_fortran.npy'));
    expect(npy.header).toMatchObject({ fortranOrder: true, shape: [4, 3] });
    expect(Array.from(await npy.readRows(0, 4))).toEqual(sevenths(0, 12, Math.fround));
    expect(Array.from(await npy.readRows(1, 3))).toEqual(sevenths(3, 9, Math.fround));
    await npy.close();
  });

  it('reads big-endian >f4', async () => {
    const npy = await openNpy(fixture('f32_be.npy'));
    expect(npy.header).toMatchObject({ littleEndian: false, dtype: 'float32', shape: [3, 4] });
    expect(Array.from(await npy.readRows(1, 3))).toEqual(sevenths(4, 12, Math.fround));
    await npy.close();
  });

  it.each([
    ['f32_v2.npy', [2, 0]],
    ['f32_v3.npy', [3, 0]],
  ])('reads format version %s', async (name, version) => {
    const npy = await openNpy(fixture(name));
    expect(npy.header.version).toEqual(version);
    expect(npy.header.dataOffset).toBe(128);
    expect(Array.from(await npy.readRows(0, 2))).toEqual(sevenths(0, 6, Math.fround));
    await npy.close();
  });

  it('reads a (0, 4) array', async () => {
    const npy = await openNpy(fixture('f32_empty.npy'));
    expect(npy.header).toMatchObject({ rowCount: 0, rowLength: 4 });
    expect(await npy.readRows(0, 0)).toHaveLength(0);
    await npy.close();
  });

  it('refuses int64 naming the file, the dtype and the fix', async () => {
    const e = await expectError(
      openNpy(fixture('i64.npy')),
      'NPY_MALFORMED',
      'i64.npy',
      /holds int64/,
      /astype\('float16'\)/,
    );
    expect(e.message).toMatch(/^expected float16 or float32 embeddings in/);
  });

  it('bounds-checks readRows', async () => {
    const npy = await openNpy(fixture('f32_2d.npy'));
    for (const [start, end] of [
      [-1, 2],
      [3, 2],
      [0, 6],
      [1.5, 2],
    ] as const) {
      await expectError(npy.readRows(start, end), 'INVALID_OPTION', 'f32_2d.npy', /\[0, 5\]/);
    }
    await npy.close();
  });
});

describe('npy header parsing', () => {
  it('parses the python dict properly: quotes, key order, trailing commas, (n,), 3L', () => {
    const variants: [string, number[]][] = [
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", [3, 4]],
      ['{"shape": (3, 4,), "fortran_order": False, "descr": "<f4"}', [3, 4]],
      ["{'descr':'<f4','fortran_order':False,'shape':(3L, 4L)}", [3, 4]],
      ["{ 'descr' : u'<f4' ,\n 'fortran_order' : False , 'shape' : ( 7 , ) , }", [7]],
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (0, 512), }", [0, 512]],
    ];
    for (const [dict, shape] of variants) {
      const header = parseNpyHeader(craft(dict), 'x.npy');
      expect(header.shape, dict).toEqual(shape);
      expect(header.dtype).toBe('float32');
      expect(header.dataOffset).toBe(64 * Math.ceil((10 + dict.length + 1) / 64));
    }
  });

  it('python literals: (5) is an int, (5,) a tuple, strings with escapes', () => {
    expect(parsePythonLiteral('(5)')).toBe(5n);
    expect(parsePythonLiteral('(5,)')).toEqual(new PyTuple([5n]));
    expect(parsePythonLiteral('()')).toEqual(new PyTuple([]));
    expect(parsePythonLiteral(String.raw`'a\'b\x41'`)).toBe("a'bA");
    expect(parsePythonLiteral('[True, None, -3]')).toEqual([true, null, -3n]);
    expect(() => parsePythonLiteral("{'a': 1")).toThrow(/expected/);
    expect(() => parsePythonLiteral("{'a': 1.5}")).toThrow(/integers/);
    expect(() => parsePythonLiteral("{'a': 1} x")).toThrow(/trailing/);
    expect(() => parsePythonLiteral("{'a': 1, 'a': 2}")).toThrow(/duplicate/);
  });

  it('reads descr variants: <f2, >f2, <f4, >f4', () => {
    for (const [descr, dtype, littleEndian] of [
      ['<f2', 'float16', true],
      ['>f2', 'float16', false],
      ['<f4', 'float32', true],
      ['>f4', 'float32', false],
    ] as const) {
      const h = parseNpyHeader(craft(`{'descr': '${descr}', 'fortran_order': False, 'shape': (1, 2), }`), 'x.npy');
      expect(h).toMatchObject({ dtype, littleEndian });
    }
  });

  it.each([
    ["{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }", /holds float64/],
    ["{'descr': '|u1', 'fortran_order': False, 'shape': (3, 4), }", /holds uint8/],
    ["{'descr': '<U10', 'fortran_order': False, 'shape': (3,), }", /holds str/],
    ["{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", /structured dtype/],
    ["{'descr': '|f4', 'fortran_order': False, 'shape': (3, 4), }", /no byte order/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }", /1-D or 2-D.*\(2, 3, 4\)/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (), }", /1-D or 2-D.*\(\)/],
    ["{'descr': '<f4', 'fortran_order': 0, 'shape': (3, 4), }", /fortran_order must be/],
    ["{'descr': '<f4', 'shape': (3, 4), }", /expected the keys/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'x': 1}", /expected the keys/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (3, -4), }", /non-negative/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': [3, 4], }", /tuple/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)", /malformed .npy header/],
  ])('refuses %s', (dict, message) => {
    const e = (() => {
      try {
        parseNpyHeader(craft(dict), 'emb/x.npy');
      } catch (err) {
        return err as ClipstreamError;
      }
      throw new Error('no error');
    })();
    expect(e.code).toBe('NPY_MALFORMED');
    expect(e.message).toContain('emb/x.npy');
    expect(e.message).toMatch(message);
  });

  it('refuses a bad magic, an unsupported version and a truncated header', () => {
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    expect(() => parseNpyHeader(craft(dict, 1, undefined, 'PK\x03\x04xx'), 'a.npy')).toThrow(
      /a.npy does not start with the \\x93NUMPY magic/,
    );
    expect(() => parseNpyHeader(craft(dict, 4), 'a.npy')).toThrow(/unsupported .npy format version 4.0 in a.npy/);
    expect(() => parseNpyHeader(craft(dict).subarray(0, 40), 'a.npy')).toThrow(/truncated header in a.npy/);
    expect(() => parseNpyHeader(new Uint8Array(3), 'a.npy')).toThrow(/a.npy is 3 bytes/);
  });
});

describe('npy malformed files', () => {
  it('bad magic, truncated data and an empty file: NPY_MALFORMED naming the file', async () => {
    const dir = await tempDir();
    const good = new Uint8Array(await readFile(fixture('f32_2d.npy')));
    const bad = good.slice();
    bad[1] = 0x58;
    await writeFile(join(dir, 'bad.npy'), bad);
    await writeFile(join(dir, 'cut.npy'), good.subarray(0, good.length - 8));
    await writeFile(join(dir, 'empty.npy'), new Uint8Array(0));
    await expectError(openNpy(join(dir, 'bad.npy')), 'NPY_MALFORMED', /bad\.npy does not start with/);
    await expectError(
      openNpy(join(dir, 'cut.npy')),
      'NPY_MALFORMED',
      /truncated: expected 80 bytes of data in .*cut\.npy .*found 72/,
    );
    await expectError(openNpy(join(dir, 'empty.npy')), 'NPY_MALFORMED', /empty\.npy is 0 bytes/);
    await expectError(openNpy(join(dir, 'missing.npy')), 'INPUT_NOT_FOUND', /missing\.npy/);
  });

  it('a row holding NaN or ±Infinity is refused when read, naming the file, the row and the column (C and Fortran order, float16 too)', async () => {
    const dir = await tempDir();
    const rows = (bad: number, value: number) =>
      Float32Array.from({ length: 6 * 4 }, (_, i) => (i === bad ? value : i / 32));
    const cases: [string, Uint8Array, RegExp][] = [
      [
        'nan.npy',
        encodeNpy(rows(4 * 3 + 2, NaN), [6, 4], 'float32'),
        /nan\.npy: expected finite numbers but row 3 column 2 is NaN/,
      ],
      [
        'inf16.npy',
        encodeNpy(rows(4 * 5, 1e6), [6, 4], 'float16'),
        /inf16\.npy: expected finite numbers but row 5 column 0 is Infinity/,
      ], // 1e6 overflows float16
      [
        'neginf.npy',
        encodeNpy(rows(1, -Infinity), [6, 4], 'float32'),
        /neginf\.npy: expected finite numbers but row 0 column 1 is -Infinity/,
      ],
    ];
    for (const [name, bytes, message] of cases) {
      await writeFile(join(dir, name), bytes);
      const npy = await openNpy(join(dir, name));
      await expectError(npy.readRows(0, 6), 'NPY_MALFORMED', message);
      await npy.close();
    }
    // Fortran order (read column by column): the row is still the row
    const fortran = encodeNpy(rows(0, 0), [6, 4], 'float32').slice();
    const header = parseNpyHeader(fortran, 'f.npy');
    const text = Buffer.from(fortran.subarray(0, header.dataOffset))
      .toString('latin1')
      .replace("'fortran_order': False", "'fortran_order': True ");
    fortran.set(Buffer.from(text, 'latin1'));
    new DataView(fortran.buffer).setFloat32(header.dataOffset + (1 * 6 + 4) * 4, NaN, true); // column 1, row 4
    await writeFile(join(dir, 'fortran.npy'), fortran);
    const npy = await openNpy(join(dir, 'fortran.npy'));
    expect(Array.from(await npy.readRows(0, 4))).toHaveLength(16); // rows before it read fine
    await expectError(
      npy.readRows(2, 6),
      'NPY_MALFORMED',
      /fortran\.npy: expected finite numbers but row 4 column 1 is NaN/,
    );
    await npy.close();
  });
});

describe('float16 conversion', () => {
  it('float32 → float16 matches numpy on the edge cases (ties, subnormals, overflow, inf, nan)', async () => {
    const values = await rawFloats('f16_cases_f32.npy');
    const expected = await rawBits('f16_cases_f16.npy');
    expect(values.length).toBe(expected.length);
    for (let i = 0; i < values.length; i++) {
      const got = float32ToFloat16Bits(values[i]!);
      if (isNanBits(expected[i]!)) expect(isNanBits(got)).toBe(true);
      else expect(got.toString(16), `value ${values[i]}`).toBe(expected[i]!.toString(16));
    }
    for (const impl of IMPLS) {
      const bits = float32ToFloat16BitsArray(values, undefined, impl);
      bits.forEach((b, i) => {
        if (isNanBits(expected[i]!)) expect(isNanBits(b)).toBe(true);
        else expect(b, `${impl} value ${values[i]}`).toBe(expected[i]);
      });
    }
  });

  it('float16 → float32 matches numpy on a spread of bit patterns, both paths', async () => {
    const bits = await rawBits('f16_bits_f16.npy');
    const expected = await rawFloats('f16_bits_f32.npy');
    for (let i = 0; i < bits.length; i++) {
      expect(Object.is(float16BitsToFloat32(bits[i]!), expected[i]), `bits ${bits[i]!.toString(16)}`).toBe(true);
    }
    for (const impl of IMPLS) {
      const out = float16BitsToFloat32Array(bits, undefined, impl);
      out.forEach((v, i) => expect(Object.is(v, expected[i]), `${impl} bits ${bits[i]!.toString(16)}`).toBe(true));
    }
  });

  it('every float16 round-trips; manual and native agree on all 65 536 patterns and on random float32', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const manual = float16BitsToFloat32Array(all, undefined, 'manual');
    const back = float32ToFloat16BitsArray(manual, undefined, 'manual');
    for (let i = 0; i < 65536; i++) {
      if (isNanBits(i)) expect(Number.isNaN(manual[i])).toBe(true);
      else if (back[i] !== i) expect.fail(`bits ${i.toString(16)} → ${manual[i]} → ${back[i]!.toString(16)}`);
    }
    if (!NativeFloat16Array) return;
    const native = float16BitsToFloat32Array(all, undefined, 'native');
    for (let i = 0; i < 65536; i++) {
      if (!Object.is(native[i], manual[i]) && !(Number.isNaN(native[i]) && Number.isNaN(manual[i]))) {
        expect.fail(`decode ${i.toString(16)}: native ${native[i]} manual ${manual[i]}`);
      }
    }
    const random = new Float32Array(new Uint32Array(200_000).map(() => (Math.random() * 2 ** 32) >>> 0).buffer);
    // bias toward the float16 range too
    for (let i = 0; i < 100_000; i++) random[i] = (Math.random() - 0.5) * 2 ** (Math.floor(Math.random() * 44) - 28);
    const a = float32ToFloat16BitsArray(random, undefined, 'manual');
    const b = float32ToFloat16BitsArray(random, undefined, 'native');
    for (let i = 0; i < random.length; i++) {
      if (a[i] !== b[i] && !(isNanBits(a[i]!) && isNanBits(b[i]!)))
        expect.fail(`encode ${random[i]}: manual ${a[i]} native ${b[i]}`);
    }
  });
});

describe('npy writing', () => {
  it('encodeNpy is byte-for-byte np.save (float32 and float16)', async () => {
    const f32 = Float32Array.from(sevenths(0, 20, Math.fround));
    expect(encodeNpy(f32, [5, 4], 'float32')).toEqual(new Uint8Array(await readFile(fixture('f32_2d.npy'))));
    const f16 = Float32Array.from(sevenths(0, 18, f16round));
    expect(encodeNpy(f16, [6, 3], 'float16')).toEqual(new Uint8Array(await readFile(fixture('f16_2d.npy'))));
    expect(() => encodeNpy(f16, [5, 3], 'float16')).toThrow(/Expected 5 × 3 = 15 values/);
  });

  it('writeNpy streams chunks, patches the header, and reads back (float16 and float32)', async () => {
    const dir = await tempDir();
    const dim = 5;
    const rows = 1234;
    const data = Float32Array.from({ length: rows * dim }, (_, i) => (i % 977) / 8 - 60);
    async function* chunks() {
      for (let r = 0; r < rows; r += 100) yield data.subarray(r * dim, Math.min(rows, r + 100) * dim);
    }
    for (const dtype of ['float16', 'float32'] as const) {
      const path = join(dir, `${dtype}.npy`);
      expect(await writeNpy(path, chunks(), dim, dtype)).toEqual({ rows });
      // identical to encoding it at once: the patched header is the header numpy writes for (1234, 5)
      expect(new Uint8Array(await readFile(path))).toEqual(encodeNpy(data, [rows, dim], dtype));
      const npy = await openNpy(path);
      expect(npy.header).toMatchObject({ dtype, shape: [rows, dim], dataOffset: 128 });
      expect(Array.from(await npy.readRows(1000, 1003))).toEqual(Array.from(data.subarray(5000, 5015)));
      await npy.close();
    }
    expect(await writeNpy(join(dir, 'none.npy'), [], 3, 'float16')).toEqual({ rows: 0 });
    expect((await openNpy(join(dir, 'none.npy'))).header.shape).toEqual([0, 3]);
  });

  it('writeNpy refuses partial rows and leaves no file behind', async () => {
    const dir = await tempDir();
    await expectError(
      writeNpy(join(dir, 'x.npy'), [new Float32Array(6), new Float32Array(4)], 3, 'float32'),
      'INVALID_OPTION',
      /whole rows of 3/,
    );
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('npy over HTTP range requests', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  /** A local server for `files`; `mode` changes its behaviour. Counts body bytes sent per request. */
  async function serve(files: Record<string, Uint8Array>, mode: 'range' | 'no-range' = 'range') {
    const log: { path: string; range: string | undefined; sent: number; status: number }[] = [];
    server = createServer((req, res) => {
      const path = req.url ?? '/';
      if (path === '/moved.npy') {
        res.writeHead(302, { location: '/big.npy' }).end();
        return;
      }
      const body = files[path];
      const entry = { path, range: req.headers.range, sent: 0, status: 404 };
      log.push(entry);
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      const match = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (mode === 'no-range' || !match) {
        entry.status = 200;
        entry.sent = body.length;
        res.writeHead(200, { 'content-length': body.length }).end(body);
        return;
      }
      const start = Number(match[1]);
      if (start >= body.length) {
        entry.status = 416;
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      const end = Math.min(Number(match[2]), body.length - 1);
      const part = body.subarray(start, end + 1);
      entry.status = 206;
      entry.sent = part.length;
      res
        .writeHead(206, {
          'accept-ranges': 'bytes',
          'content-range': `bytes ${start}-${end}/${body.length}`,
          'content-length': part.length,
        })
        .end(part);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return { base: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, log };
  }

  const rows = 1000;
  const dim = 512;
  const big = Float32Array.from({ length: rows * dim }, (_, i) => ((i * 7919) % 2048) / 64);
  const bigFile = encodeNpy(big, [rows, dim], 'float16'); // 1 KiB per row, ~1 MB

  it('reads rows 10..12 of a 1000-row file with ~2 rows on the wire, not the file', async () => {
    const { base, log } = await serve({ '/big.npy': bigFile });
    const npy = await openNpy(`${base}/big.npy`);
    try {
      expect(npy.header).toMatchObject({ shape: [rows, dim], dtype: 'float16' });
      expect(npy.byteLength).toBe(bigFile.length);
      const got = await npy.readRows(10, 12);
      expect(Array.from(got)).toEqual(Array.from(big.subarray(10 * dim, 12 * dim)));
      const last = log.at(-1)!;
      expect(last).toMatchObject({
        status: 206,
        sent: 2 * dim * 2,
        range: `bytes=${128 + 10 * 1024}-${128 + 12 * 1024 - 1}`,
      });
      const total = log.reduce((sum, e) => sum + e.sent, 0);
      expect(total).toBeLessThan(4096 + 3 * 1024);
      expect(total).toBeLessThan(bigFile.length / 100);
    } finally {
      await npy.close();
    }
  });

  it('follows a redirect and reads the same values as a local read', async () => {
    const { base } = await serve({ '/big.npy': bigFile });
    const npy = await openNpy(`${base}/moved.npy`);
    expect(Array.from(await npy.readRows(999, 1000))).toEqual(Array.from(big.subarray(999 * dim)));
    await npy.close();
  });

  it('refuses a server without range support, a 404 and a truncated remote file', async () => {
    const { base } = await serve({ '/big.npy': bigFile, '/cut.npy': bigFile.subarray(0, 5000) }, 'range');
    await expectError(openNpy(`${base}/nope.npy`), 'INPUT_NOT_FOUND', /nope\.npy: HTTP 404/);
    await expectError(
      openNpy(`${base}/cut.npy`),
      'NPY_MALFORMED',
      /truncated: expected 1024000 bytes of data in http.*cut\.npy.*found 4872/,
    );
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    const plain = await serve({ '/big.npy': bigFile }, 'no-range');
    await expectError(openNpy(`${plain.base}/big.npy`), 'INPUT_MALFORMED', /does not support HTTP range requests/);
  });

  it('an unreachable server fails with INPUT_NOT_FOUND after bounded retries', async () => {
    const { base } = await serve({});
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    await expectError(openNpy(`${base}/x.npy`, { retries: 1, timeoutMs: 2000 }), 'INPUT_NOT_FOUND', /cannot read http/);
  });
});
