/**
 * A plan's candidates on disk, read back lazily: `candidates.jsonl` holds one JSON line per candidate
 * (`{"query","id","similarity","url","caption","metadata"}`, in the order they were written: readable with
 * `pandas.read_json(path, lines=True)`), and `positions-{q}.bin` holds, per query, each position's line (offset as a
 * float64, length as a uint32, little-endian: 12 bytes). Position i of query q is `positions-q[i]`. Appends go to the
 * end of both; a reader sees the positions written so far (`length`), so a stream can start on a plan still being
 * resolved. Memory: a few cached blocks of positions per query, never the candidates.
 */
import { copyFile, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { inputMalformed } from '../core/errors.js';
import type { Candidate } from './plan.js';

export const DATA_FILE = 'candidates.jsonl';
export const positionsFile = (query: number) => `positions-${String(query).padStart(4, '0')}.bin`;
const ENTRY = 12;
/** Positions read (and cached) at once per query: 1 024 × 12 bytes. */
const BLOCK = 1024;
const CACHED_BLOCKS = 8;
/** Candidate lines are read through a cache of 64 KB blocks of the data file (32 of them: 2 MB a plan). */
const DATA_BLOCK = 64 * 1024;
const CACHED_DATA_BLOCKS = 32;
/** A candidate line longer than this is not one of ours. */
const MAX_LINE = 16 * 1024 * 1024;

/** What a stripe reads: an array, or a query's candidates on disk. */
export interface CandidateList {
  readonly length: number;
  at(position: number): Candidate | undefined | Promise<Candidate | undefined>;
}

export class PlanStore {
  private dataSize: number;
  /** Positions readers see. */
  private readonly lengths: number[];
  /** Positions written (appendLines writes ahead of what readers see until publish()). */
  private readonly written: number[];
  private readonly blocks: Map<number, Buffer>[];
  private readonly dataBlocks = new Map<number, Buffer>();
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly names: string[],
    private readonly data: FileHandle,
    private readonly positions: FileHandle[],
    lengths: number[],
    dataSize: number,
    readonly writable: boolean,
  ) {
    this.lengths = lengths;
    this.written = [...lengths];
    this.dataSize = dataSize;
    this.blocks = names.map(() => new Map());
  }

  /** A new store in `dir` (files of an earlier plan there are replaced). */
  static async create(dir: string, names: string[]): Promise<PlanStore> {
    const data = await open(join(dir, DATA_FILE), 'w+');
    const positions = await Promise.all(names.map((_, q) => open(join(dir, positionsFile(q)), 'w+')));
    return new PlanStore(
      dir,
      names,
      data,
      positions,
      names.map(() => 0),
      0,
      true,
    );
  }

  /** The store of a written plan folder, whose header says how many candidates each query has. */
  static async open(dir: string, names: string[], planned: number[]): Promise<PlanStore> {
    const opened: FileHandle[] = [];
    try {
      const data = await open(join(dir, DATA_FILE), 'r');
      opened.push(data);
      const dataSize = (await data.stat()).size;
      const positions: FileHandle[] = [];
      for (const [q, name] of names.entries()) {
        const handle = await open(join(dir, positionsFile(q)), 'r');
        opened.push(handle);
        positions.push(handle);
        const size = (await handle.stat()).size;
        if (size !== planned[q]! * ENTRY)
          throw inputMalformed(
            `${join(dir, positionsFile(q))} holds ${Math.floor(size / ENTRY)} positions but the plan says query ${name} has ${planned[q]} candidates`,
          );
      }
      return new PlanStore(dir, names, data, positions, [...planned], dataSize, false);
    } catch (err) {
      await Promise.all(opened.map((h) => h.close()));
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
    await writeAll(this.data, data, this.dataSize);
    await writeAll(this.positions[query]!, entries, this.written[query]! * ENTRY);
    this.dataSize = offset;
    this.written[query] = this.written[query]! + lengths.length;
    if (visible) this.lengths[query] = this.written[query]!;
  }

  /** Candidate `position` of `query`; undefined past the positions written. */
  async at(query: number, position: number): Promise<Candidate | undefined> {
    if (!Number.isInteger(position) || position < 0 || position >= this.lengths[query]!) return undefined;
    const block = await this.block(query, Math.floor(position / BLOCK));
    const at = (position % BLOCK) * ENTRY;
    const offset = block.readDoubleLE(at);
    const length = block.readUInt32LE(at + 8);
    const where = `${join(this.dir, DATA_FILE)} (query ${this.names[query]}, position ${position})`;
    if (!Number.isSafeInteger(offset) || offset < 0 || length > MAX_LINE || offset + length > this.dataSize)
      throw inputMalformed(`${where}: the position points outside the file`);
    return parseLine(await this.readData(offset, length), where);
  }

  /** Bytes of the data file: from a cached block when they lie in one that is complete (appends never touch it). */
  private async readData(offset: number, length: number): Promise<Buffer> {
    const index = Math.floor(offset / DATA_BLOCK);
    const start = index * DATA_BLOCK;
    if (offset + length > start + DATA_BLOCK || start + DATA_BLOCK > this.dataSize) {
      const bytes = Buffer.alloc(length);
      await this.data.read(bytes, 0, length, offset);
      return bytes;
    }
    let block = this.dataBlocks.get(index);
    if (block) this.dataBlocks.delete(index);
    else {
      block = Buffer.alloc(DATA_BLOCK);
      await this.data.read(block, 0, DATA_BLOCK, start);
    }
    this.dataBlocks.set(index, block);
    if (this.dataBlocks.size > CACHED_DATA_BLOCKS) this.dataBlocks.delete(this.dataBlocks.keys().next().value!);
    return block.subarray(offset - start, offset - start + length);
  }

  /** The store's files copied to `dir` (a plan folder), once the appends under way are written. */
  async copyTo(dir: string): Promise<void> {
    await this.writing;
    await copyFile(join(this.dir, DATA_FILE), join(dir, DATA_FILE));
    for (const q of this.names.keys()) await copyFile(join(this.dir, positionsFile(q)), join(dir, positionsFile(q)));
  }

  /** A block of positions, cached (a block being appended to is read again until it is full). */
  private async block(query: number, index: number): Promise<Buffer> {
    const cache = this.blocks[query]!;
    const hit = cache.get(index);
    if (hit && hit.length === BLOCK * ENTRY) return hit;
    const count = Math.min(BLOCK, this.lengths[query]! - index * BLOCK);
    const bytes = Buffer.alloc(count * ENTRY);
    await this.positions[query]!.read(bytes, 0, bytes.length, index * BLOCK * ENTRY);
    cache.set(index, bytes);
    if (cache.size > CACHED_BLOCKS) cache.delete(cache.keys().next().value!);
    return bytes;
  }

  /** Waits for the appends, then closes the files. */
  async close(): Promise<void> {
    await this.writing;
    await Promise.all([this.data, ...this.positions].map((h) => h.close().catch(() => {})));
  }

  /** Closes and deletes the store's files. */
  async remove(): Promise<void> {
    await this.close();
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
