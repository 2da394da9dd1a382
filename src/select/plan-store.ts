/**
 * A plan's candidates on disk (or read in place from an `s3://` plan folder, through the byte source), read back lazily: `candidates.jsonl` holds one JSON line per candidate
 * (`{"query","id","similarity","url","caption","metadata"}`, in the order they were written: readable with
 * `pandas.read_json(path, lines=True)`), and `positions-{q}.bin` holds, per query, each position's line (offset as a
 * float64, length as a uint32, little-endian: 12 bytes). Position i of query q is `positions-q[i]`. Appends go to the
 * end of both; a reader sees the positions written so far (`length`), so a stream can start on a plan still being
 * resolved. Memory: a few cached blocks of positions per query, never the candidates.
 */
import { copyFile, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { inputMalformed } from '../core/errors.js';
import { openByteSource, type ByteSource } from '../io/byte-source.js';
import { isS3Url, joinAt } from '../io/s3.js';
import type { Candidate } from './plan.js';

/** A plan folder's header, written last: a folder without it is no plan (plan-file.ts). */
export const PLAN_FILE = 'plan.json';
export const DATA_FILE = 'candidates.jsonl';
export const positionsFile = (query: number) => `positions-${String(query).padStart(4, '0')}.bin`;
const ENTRY = 12;
/**
 * How a store reads its files: positions a block of `positions` entries at a time (`cachedPositions` blocks kept
 * per query), candidate lines through a cache of `dataCached` blocks of `dataBlock` bytes of the data file.
 */
interface ReadSizes {
  positions: number;
  cachedPositions: number;
  dataBlock: number;
  dataCached: number;
}
/** On disk: 1 024 positions (12 KB) a read, 8 blocks a query; 64 KB blocks of lines, 32 of them (2 MB a plan). */
const LOCAL: ReadSizes = { positions: 1024, cachedPositions: 8, dataBlock: 64 * 1024, dataCached: 32 };
/**
 * On S3 a read is a GET (~10–50 ms, whatever its size up to a few hundred KB): 8 192 positions (96 KB) a read and
 * 256 KB blocks of lines, 16 of them (4 MB a plan), so that one GET serves ~1 600 lines of ~160 bytes.
 */
const REMOTE: ReadSizes = { positions: 8192, cachedPositions: 4, dataBlock: 256 * 1024, dataCached: 16 };
/** A candidate line longer than this is not one of ours. */
const MAX_LINE = 16 * 1024 * 1024;

/** What a stripe reads: an array, or a query's candidates on disk. */
export interface CandidateList {
  readonly length: number;
  at(position: number): Candidate | undefined | Promise<Candidate | undefined>;
}

/** Reads of one of a store's files: `into.length` bytes at `offset`, all of them. */
interface FileReader {
  readInto(offset: number, into: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** A file the store writes, read through its handle (a read never asks past what was written). */
function handleReader(handle: FileHandle): FileReader {
  return {
    async readInto(offset, into) {
      for (let done = 0; done < into.length;) {
        const { bytesRead } = await handle.read(into, done, into.length - done, offset + done);
        if (bytesRead === 0) throw inputMalformed(`a plan file ended at byte ${offset + done} while being read`);
        done += bytesRead;
      }
    },
    close: () => handle.close(),
  };
}

export class PlanStore {
  private dataSize: number;
  /** Positions readers see. */
  private readonly lengths: number[];
  /** Positions written (appendLines writes ahead of what readers see until publish()). */
  private readonly written: number[];
  private readonly blocks: Map<number, Buffer>[];
  private readonly dataBlocks = new Map<number, Buffer>();
  /**
   * Blocks being read, shared by the reads that need them meanwhile: a stream asks for a window of candidates at
   * once (8 × fetch.concurrency), which without this would fetch the same block that many times (a GET each on S3).
   */
  private readonly reading = new Map<string, Promise<Buffer>>();
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly names: string[],
    private readonly data: FileReader,
    private readonly positions: FileReader[],
    lengths: number[],
    dataSize: number,
    /** The files' handles when the store writes them (data, then positions per query); none when it reads a plan. */
    private readonly handles: { data: FileHandle; positions: FileHandle[] } | undefined,
    private readonly sizes: ReadSizes = LOCAL,
  ) {
    this.lengths = lengths;
    this.written = [...lengths];
    this.dataSize = dataSize;
    this.blocks = names.map(() => new Map());
  }

  get writable(): boolean {
    return this.handles !== undefined;
  }

  /** A new store in the local folder `dir` (files of an earlier plan there are replaced). */
  static async create(dir: string, names: string[]): Promise<PlanStore> {
    const data = await open(join(dir, DATA_FILE), 'w+');
    const opening = await Promise.allSettled(names.map((_, q) => open(join(dir, positionsFile(q)), 'w+')));
    const failed = opening.find((o) => o.status === 'rejected');
    if (failed) {
      // the handles that did open are closed (out of file handles, the others would leak)
      for (const o of opening) if (o.status === 'fulfilled') await o.value.close();
      await data.close();
      throw failed.reason;
    }
    const positions = opening.map((o) => (o as PromiseFulfilledResult<FileHandle>).value);
    return new PlanStore(
      dir,
      names,
      handleReader(data),
      positions.map(handleReader),
      names.map(() => 0),
      0,
      { data, positions },
    );
  }

  /**
   * The store of a written plan folder, whose header says how many candidates each query has: a local folder or
   * an `s3://` prefix, read in place through the byte source (range reads, never a whole download).
   */
  static async open(dir: string, names: string[], planned: number[]): Promise<PlanStore> {
    const opened: ByteSource[] = [];
    try {
      const { source: data } = await openByteSource(joinAt(dir, DATA_FILE));
      opened.push(data);
      const positions: ByteSource[] = [];
      for (const [q, name] of names.entries()) {
        const { source } = await openByteSource(joinAt(dir, positionsFile(q)));
        opened.push(source);
        positions.push(source);
        if (source.size !== planned[q]! * ENTRY)
          throw inputMalformed(
            `${source.name} holds ${Math.floor(source.size / ENTRY)} positions but the plan says query ${name} has ${planned[q]} candidates`,
          );
      }
      const sizes = isS3Url(dir) ? REMOTE : LOCAL;
      return new PlanStore(dir, names, data, positions, [...planned], data.size, undefined, sizes);
    } catch (err) {
      await Promise.all(opened.map((s) => s.close()));
      throw err;
    }
  }

  length(query: number): number {
    return this.lengths[query]!;
  }

  list(query: number): CandidateList {
    return new StoredList(this, query);
  }

  /** Appends candidates to a query; they are visible to readers once written. Appends run one after another. */
  append(query: number, candidates: Candidate[]): Promise<void> {
    const run = this.writing.then(() => this.write(query, candidates));
    this.writing = run.catch(() => {});
    return run;
  }

  /**
   * Appends candidate lines already encoded (JSON, each ending with a newline), in one buffer with each line's
   * length, unseen by readers until `publish()`: the long search writes its block so, and publishes it whole.
   */
  appendLines(query: number, lines: { data: Buffer; lengths: number[] }): Promise<void> {
    const run = this.writing.then(() => this.writeLines(query, lines.data, lines.lengths, false));
    this.writing = run.catch(() => {});
    return run;
  }

  /** Makes every position written visible to readers. */
  async publish(): Promise<void> {
    await this.writing;
    this.written.forEach((n, q) => (this.lengths[q] = n));
  }

  private async write(query: number, candidates: Candidate[]): Promise<void> {
    const name = this.names[query]!;
    const lines = candidates.map((c) =>
      Buffer.from(
        JSON.stringify({
          query: name,
          id: c.id,
          similarity: c.similarity,
          url: c.url,
          caption: c.caption,
          metadata: c.metadata,
        }) + '\n',
      ),
    );
    await this.writeLines(
      query,
      Buffer.concat(lines),
      lines.map((l) => l.length),
      true,
    );
  }

  private async writeLines(query: number, data: Buffer, lengths: number[], visible: boolean): Promise<void> {
    if (lengths.length === 0) return;
    const entries = Buffer.alloc(lengths.length * ENTRY);
    let offset = this.dataSize;
    lengths.forEach((length, i) => {
      entries.writeDoubleLE(offset, i * ENTRY);
      entries.writeUInt32LE(length, i * ENTRY + 8);
      offset += length;
    });
    if (!this.handles) throw new Error('a plan store opened for reading cannot be appended to');
    await writeAll(this.handles.data, data, this.dataSize);
    await writeAll(this.handles.positions[query]!, entries, this.written[query]! * ENTRY);
    this.dataSize = offset;
    this.written[query] = this.written[query]! + lengths.length;
    if (visible) this.lengths[query] = this.written[query]!;
  }

  /** Candidate `position` of `query`; undefined past the positions written. */
  async at(query: number, position: number): Promise<Candidate | undefined> {
    if (!Number.isInteger(position) || position < 0 || position >= this.lengths[query]!) return undefined;
    const per = this.sizes.positions;
    const block = await this.block(query, Math.floor(position / per));
    const at = (position % per) * ENTRY;
    const offset = block.readDoubleLE(at);
    const length = block.readUInt32LE(at + 8);
    const where = `${joinAt(this.dir, DATA_FILE)} (query ${this.names[query]}, position ${position})`;
    if (!Number.isSafeInteger(offset) || offset < 0 || length > MAX_LINE || offset + length > this.dataSize)
      throw inputMalformed(`${where}: the position points outside the file`);
    return parseLine(await this.readData(offset, length), where);
  }

  /**
   * Bytes of the data file: from a cached block when they lie in one that is complete (appends never touch it; a
   * plan read, not written, never grows, so its last block is complete too).
   */
  private async readData(offset: number, length: number): Promise<Buffer> {
    const size = this.sizes.dataBlock;
    const index = Math.floor(offset / size);
    const start = index * size;
    const end = this.writable ? start + size : Math.min(start + size, this.dataSize);
    if (offset + length > end || end > this.dataSize) {
      const bytes = Buffer.alloc(length);
      await this.data.readInto(offset, bytes);
      return bytes;
    }
    let block = this.dataBlocks.get(index);
    if (block) this.dataBlocks.delete(index);
    else block = await this.readOnce(`d${index}`, this.data, start, end - start);
    this.dataBlocks.set(index, block);
    if (this.dataBlocks.size > this.sizes.dataCached) this.dataBlocks.delete(this.dataBlocks.keys().next().value!);
    return block.subarray(offset - start, offset - start + length);
  }

  /** The names of the store's files (in its folder), once the appends under way are written. */
  async files(): Promise<string[]> {
    await this.writing;
    return [DATA_FILE, ...this.names.map((_, q) => positionsFile(q))];
  }

  /** The files of a store written locally copied to `dir` (a plan folder), once the appends under way are written. */
  async copyTo(dir: string): Promise<void> {
    await this.writing;
    await copyFile(join(this.dir, DATA_FILE), join(dir, DATA_FILE));
    for (const q of this.names.keys()) await copyFile(join(this.dir, positionsFile(q)), join(dir, positionsFile(q)));
  }

  /**
   * A block of positions, cached (a block being appended to is read again until it is full; a plan read, not
   * written, never grows, so its last block is final).
   */
  private async block(query: number, index: number): Promise<Buffer> {
    const per = this.sizes.positions;
    const cache = this.blocks[query]!;
    const hit = cache.get(index);
    if (hit && (hit.length === per * ENTRY || !this.writable)) return hit;
    const count = Math.min(per, this.lengths[query]! - index * per);
    // A block still being appended to is read on its own: a read begun earlier may hold fewer positions.
    const key = count === per || !this.writable ? `p${query}:${index}` : undefined;
    const bytes = await this.readOnce(key, this.positions[query]!, index * per * ENTRY, count * ENTRY);
    cache.set(index, bytes);
    if (cache.size > this.sizes.cachedPositions) cache.delete(cache.keys().next().value!);
    return bytes;
  }

  /** `length` bytes of a file at `offset`; one read for all who ask for the same `key` while it runs. */
  private readOnce(key: string | undefined, file: FileReader, offset: number, length: number): Promise<Buffer> {
    const running = key === undefined ? undefined : this.reading.get(key);
    if (running) return running;
    const bytes = Buffer.alloc(length);
    const read = file.readInto(offset, bytes).then(() => bytes);
    if (key === undefined) return read;
    const shared = read.finally(() => this.reading.delete(key));
    this.reading.set(key, shared);
    return shared;
  }

  /** Waits for the appends, then closes the files. */
  async close(): Promise<void> {
    await this.writing;
    await Promise.all([this.data, ...this.positions].map((r) => r.close().catch(() => {})));
  }

  /** Closes and deletes the store's files (of a store it wrote). */
  async remove(): Promise<void> {
    await this.close();
    if (!this.writable) return;
    await Promise.all(
      [DATA_FILE, ...this.names.map((_, q) => positionsFile(q))].map((f) => rm(join(this.dir, f), { force: true })),
    );
  }
}

/** A positioned write of all the bytes (a write may take fewer than asked). */
async function writeAll(file: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await file.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

class StoredList implements CandidateList {
  constructor(
    readonly store: PlanStore,
    private readonly query: number,
  ) {}

  get length(): number {
    return this.store.length(this.query);
  }

  at(position: number): Promise<Candidate | undefined> {
    return this.store.at(this.query, position);
  }
}

function parseLine(bytes: Buffer, where: string): Candidate {
  let row: unknown;
  try {
    row = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw inputMalformed(`${where}: not a JSON line`);
  }
  const r = row as Record<string, unknown>;
  if (
    !r ||
    typeof r !== 'object' ||
    typeof r.id !== 'number' ||
    typeof r.similarity !== 'number' ||
    typeof r.url !== 'string'
  )
    throw inputMalformed(`${where}: not a candidate (id, similarity, url)`);
  const metadata = r.metadata && typeof r.metadata === 'object' ? (r.metadata as Record<string, unknown>) : {};
  return {
    id: r.id,
    similarity: r.similarity,
    url: r.url,
    caption: typeof r.caption === 'string' ? r.caption : null,
    metadata,
  };
}
