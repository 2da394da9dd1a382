/**
 * Candidates spilled to disk while a long plan is resolved, in buckets small enough to be read back whole: a
 * bucket is two files, fixed-size records (`b{n}.rec`) and the records' payloads (`b{n}.dat`: the row's url and the
 * rest of its candidate line, when known). Writes are buffered and appended, so that memory holds the buffers
 * (SPILL_BUFFER_BYTES), never the plan.
 */
import { appendFile, readFile } from 'node:fs/promises';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { inputMalformed } from '../core/errors.js';

/** id (f64), similarity (f64), query (u16), flags (u8), pad, payload length (u32), payload offset (f64). */
export const RECORD_BYTES = 32;
/** Records one bucket is planned to hold at most: ~2 MB of records and their payloads (~300 bytes each). */
export const BUCKET_RECORDS = 65_536;
/** Most buckets of one kind: the files of a spill stay few whatever the plan. */
export const MAX_BUCKETS = 4096;
/** Buffered bytes over every bucket before they are written. */
const SPILL_BUFFER_BYTES = 8 * 1024 * 1024;
/** Buffer grown per bucket at a time. */
const CHUNK = 16 * 1024;

/** The record was in a query's first block: it counts for the search's limit, and is then left out. */
export const FIRST_BLOCK_FLAG = 1;

export interface SpillRecord {
  id: number;
  similarity: number;
  query: number;
  flags: number;
  /** The row as a candidate (encodePayload), or undefined when its metadata is to be read by id. */
  payload?: Buffer;
}

/** Buckets needed for `records` records (at least one), `per` a bucket. */
export const bucketsFor = (records: number, per = BUCKET_RECORDS) =>
  Math.max(1, Math.min(MAX_BUCKETS, Math.ceil(records / per)));

/**
 * A row's metadata as a payload: its url (u32 length + UTF-8), then the end of its candidate line
 * (`"url":…,"caption":…,"metadata":{…}}`), so that dedup reads the url and the plan writes the line without
 * parsing JSON again.
 */
export function encodePayload(row: Record<string, unknown>): Buffer {
  const { url, caption, ...metadata } = row;
  const u = typeof url === 'string' ? url : '';
  const tail = `"url":${JSON.stringify(u)},"caption":${JSON.stringify(caption == null ? null : String(caption))},"metadata":${JSON.stringify(metadata)}}`;
  const urlBytes = Buffer.byteLength(u);
  const out = Buffer.allocUnsafe(4 + urlBytes + Buffer.byteLength(tail));
  out.writeUInt32LE(urlBytes, 0);
  out.write(u, 4);
  out.write(tail, 4 + urlBytes);
  return out;
}

/**
 * The url of a payload ('' when the row had none), as its UTF-8 bytes read one byte a character (latin1): a key
 * as unique as the url and ~3 × faster to make; compare it with `urlKey(url)`.
 */
export function payloadUrl(payload: Buffer): string {
  return payload.toString('latin1', 4, 4 + payload.readUInt32LE(0));
}

/** A url as payloadUrl gives it. */
export const urlKey = (url: string) => Buffer.from(url).toString('latin1');

/** Where the end of the candidate line (after `{"query":…,"id":…,"similarity":…,`) starts in a payload. */
export const tailStart = (payload: Buffer) => 4 + payload.readUInt32LE(0);

interface Pending {
  records: Buffer;
  used: number;
  payloads: Buffer[];
}

export class SpillWriter {
  private readonly pending = new Map<number, Pending>();
  private buffered = 0;
  /** Per bucket: records written (and buffered), payload bytes. */
  private readonly counts = new Map<number, { records: number; payloadBytes: number }>();
  private total = 0;

  constructor(readonly dir: string) {}

  add(bucket: number, r: SpillRecord): void {
    let count = this.counts.get(bucket);
    if (!count) this.counts.set(bucket, (count = { records: 0, payloadBytes: 0 }));
    let out = this.pending.get(bucket);
    if (!out) this.pending.set(bucket, (out = { records: Buffer.allocUnsafe(CHUNK), used: 0, payloads: [] }));
    if (out.used + RECORD_BYTES > out.records.length) {
      const bigger = Buffer.allocUnsafe(out.records.length * 2);
      out.records.copy(bigger, 0, 0, out.used);
      out.records = bigger;
    }
    const at = out.used;
    const rec = out.records;
    rec.writeDoubleLE(r.id, at);
    rec.writeDoubleLE(r.similarity, at + 8);
    rec.writeUInt16LE(r.query, at + 16);
    rec.writeUInt8(r.flags, at + 18);
    rec.writeUInt8(0, at + 19);
    rec.writeUInt32LE(r.payload?.length ?? 0, at + 20);
    rec.writeDoubleLE(r.payload ? count.payloadBytes : -1, at + 24);
    out.used += RECORD_BYTES;
    if (r.payload) {
      out.payloads.push(r.payload);
      count.payloadBytes += r.payload.length;
    }
    count.records++;
    this.total++;
    this.buffered += RECORD_BYTES + (r.payload?.length ?? 0);
  }

  /** Writes the buffers once they hold SPILL_BUFFER_BYTES (or always, with `force`). */
  async flush(force = false): Promise<void> {
    if (!force && this.buffered < SPILL_BUFFER_BYTES) return;
    for (const [bucket, out] of this.pending) {
      await appendFile(join(this.dir, `b${bucket}.rec`), out.records.subarray(0, out.used));
      if (out.payloads.length > 0) await appendFile(join(this.dir, `b${bucket}.dat`), Buffer.concat(out.payloads));
    }
    this.pending.clear();
    this.buffered = 0;
  }

  /** Non-empty buckets, in order. */
  buckets(): number[] {
    return [...this.counts.keys()].sort((a, b) => a - b);
  }

  get totalRecords(): number {
    return this.total;
  }

  async remove(): Promise<void> {
    this.pending.clear();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A bucket never written to has no files: empty. Any other read error (EIO, EMFILE) must not lose its rows. */
function emptyIfMissing(err: unknown): Buffer {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
  throw err;
}

/** A bucket's records (flushed first by the caller), with their payloads unless `payloads` is false. */
export async function readBucket(dir: string, bucket: number, payloads = true): Promise<SpillRecord[]> {
  const records = await readFile(join(dir, `b${bucket}.rec`)).catch(emptyIfMissing);
  const datPath = join(dir, `b${bucket}.dat`);
  const data = payloads ? await readFile(datPath).catch(emptyIfMissing) : undefined;
  const out: SpillRecord[] = new Array(Math.floor(records.length / RECORD_BYTES));
  for (let i = 0, at = 0; i < out.length; i++, at += RECORD_BYTES) {
    const length = records.readUInt32LE(at + 20);
    const offset = records.readDoubleLE(at + 24);
    if (data && offset >= 0 && offset + length > data.length)
      throw inputMalformed(`${datPath} is shorter than its records say (a spill file changed under the plan)`);
    out[i] = {
      id: records.readDoubleLE(at),
      similarity: records.readDoubleLE(at + 8),
      query: records.readUInt16LE(at + 16),
      flags: records.readUInt8(at + 18),
      payload: data && offset >= 0 ? data.subarray(offset, offset + length) : undefined,
    };
  }
  return out;
}
