/**
 * Sequential little-endian reads over a ByteSource, for faiss's raw-dump format (no alignment, no byte swapping).
 * Small fields come from a read-ahead buffer; large arrays are read straight into their typed array. Every count a
 * file claims is checked against the bytes left before anything is allocated, so a lying header fails with
 * INDEX_INVALID naming the file and the offset, never with a huge allocation.
 */
import { ClipstreamError, indexInvalid } from '../../core/errors.js';
import type { ByteSource } from '../../io/byte-source.js';

const READ_AHEAD = 64 * 1024;

/** INDEX_INVALID for a file that is not a complete faiss index, with what to do about it by default. */
export function faissFileInvalid(message: string, hint?: string): ClipstreamError {
  return indexInvalid(message, {
    hint: hint ?? 'The file is not a complete faiss index (cut short, or another format); copy or rebuild it.',
  });
}

export class Cursor {
  position: number;
  private buffer = new Uint8Array(0);
  private view = new DataView(this.buffer.buffer);
  private bufferStart = 0;

  constructor(
    readonly source: ByteSource,
    start = 0,
  ) {
    this.position = start;
  }

  get remaining(): number {
    return this.source.size - this.position;
  }

  fail(message: string): ClipstreamError {
    return faissFileInvalid(`${this.source.name} (byte ${this.position}): ${message}`);
  }

  /** Makes `[position, position + n)` available in the buffer. */
  private async need(n: number): Promise<number> {
    if (n > this.remaining)
      throw this.fail(`truncated: needs ${n} more bytes, the file has ${Math.max(0, this.remaining)}`);
    const at = this.position - this.bufferStart;
    if (at >= 0 && at + n <= this.buffer.length) return at;
    // Keep the buffered bytes from `position` on and read only what follows them: no byte is fetched twice.
    const kept = at >= 0 && at < this.buffer.length ? this.buffer.subarray(at) : new Uint8Array(0);
    const length = Math.min(Math.max(n, READ_AHEAD), this.remaining);
    const next = new Uint8Array(length);
    next.set(kept);
    await this.source.readInto(this.position + kept.length, next.subarray(kept.length));
    this.buffer = next;
    this.view = new DataView(next.buffer);
    this.bufferStart = this.position;
    return 0;
  }

  async u8(): Promise<number> {
    const at = await this.need(1);
    this.position += 1;
    return this.buffer[at]!;
  }

  async bool(): Promise<boolean> {
    const value = await this.u8();
    if (value > 1) throw this.fail(`expected a bool (0 or 1) but found ${value}`);
    return value === 1;
  }

  async i32(): Promise<number> {
    const at = await this.need(4);
    this.position += 4;
    return this.view.getInt32(at, true);
  }

  async f32(): Promise<number> {
    const at = await this.need(4);
    this.position += 4;
    return this.view.getFloat32(at, true);
  }

  /** A 64-bit integer as a number; refuses values beyond 2^53 (no faiss count or offset is that large). */
  async i64(what: string): Promise<number> {
    const at = await this.need(8);
    this.position += 8;
    const value = this.view.getBigInt64(at, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw faissFileInvalid(
        `${this.source.name} (byte ${this.position - 8}): ${what} is ${value}, beyond what any index holds`,
      );
    }
    return Number(value);
  }

  /** A uint64 that must be ≥ 0 (a count or size). */
  async count(what: string): Promise<number> {
    const value = await this.i64(what);
    if (value < 0) throw this.fail(`${what} is ${value} (negative)`);
    return value;
  }

  /** uint64 where 2^64 − 1 is a marker (OnDiskInvertedLists' INVALID_OFFSET): returned as −1. */
  async offset(what: string): Promise<number> {
    const at = await this.need(8);
    if (this.view.getBigUint64(at, true) === 0xffff_ffff_ffff_ffffn) {
      this.position += 8;
      return -1;
    }
    return this.count(what);
  }

  async fourcc(): Promise<string> {
    const at = await this.need(4);
    this.position += 4;
    return String.fromCharCode(...this.buffer.subarray(at, at + 4));
  }

  /** A faiss vector's element count, checked against the bytes left in the file. */
  async vectorLength(elementBytes: number, what: string): Promise<number> {
    const n = await this.count(`${what} length`);
    if (n * elementBytes > this.remaining) {
      throw this.fail(
        `${what} claims ${n} elements (${n * elementBytes} bytes) but only ${this.remaining} bytes are left`,
      );
    }
    return n;
  }

  skip(bytes: number, what: string): void {
    if (bytes > this.remaining) throw this.fail(`${what} claims ${bytes} bytes but only ${this.remaining} are left`);
    this.position += bytes;
  }

  /** `into.byteLength` bytes into a fresh typed array (little-endian hosts only, as faiss's files). */
  async fill<T extends Float32Array | Int32Array | Uint8Array>(into: T): Promise<T> {
    const bytes = new Uint8Array(into.buffer, into.byteOffset, into.byteLength);
    if (bytes.length > this.remaining)
      throw this.fail(`truncated: needs ${bytes.length} more bytes, the file has ${this.remaining}`);
    const at = this.position - this.bufferStart;
    const buffered =
      at >= 0 && at < this.buffer.length ? this.buffer.subarray(at, at + bytes.length) : new Uint8Array(0);
    bytes.set(buffered);
    if (buffered.length < bytes.length)
      await this.source.readInto(this.position + buffered.length, bytes.subarray(buffered.length));
    this.position += bytes.length;
    return into;
  }

  async floats(n: number): Promise<Float32Array> {
    return this.fill(new Float32Array(n));
  }

  /** A faiss vector<float>. */
  async floatVector(what: string): Promise<Float32Array> {
    return this.floats(await this.vectorLength(4, what));
  }

  async int32Vector(what: string): Promise<Int32Array> {
    return this.fill(new Int32Array(await this.vectorLength(4, what)));
  }

  /** A faiss vector<uint64> / vector<int64> as numbers (each checked to be a safe integer). */
  async int64Vector(what: string): Promise<Float64Array> {
    const n = await this.vectorLength(8, what);
    return this.int64s(n, what);
  }

  async int64s(n: number, what: string): Promise<Float64Array> {
    const raw = await this.fill(new Int32Array(2 * n));
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const high = raw[2 * i + 1]!;
      if (high >= 0x200000 || high < -0x200000) throw this.fail(`${what}[${i}] is beyond what any index holds`);
      out[i] = high * 4294967296 + (raw[2 * i]! >>> 0);
    }
    return out;
  }
}
