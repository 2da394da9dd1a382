import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { internalError, invalidOption } from '../core/errors.js';
import type { ImageFormat, SampleRecord } from '../core/types.js';
import { openParquetWriter, type ParquetColumn, type ParquetRowWriter } from '../io/parquet-write.js';
import { fsyncPath, renameReplacing, shardPaths } from './layout.js';
import { assertKey, sampleMembers } from './members.js';
import type { ShardStats } from './stats.js';
import { createTarSampleStream } from './tar.js';

export type OutputFormat = 'files' | 'webdataset' | 'parquet' | 'dummy';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['files', 'webdataset', 'parquet', 'dummy'];

export interface ShardWriterOptions {
  outputFolder: string;
  /** '00000': zero-padded by the caller. */
  shardName: string;
  outputFormat: OutputFormat;
  /** parquet output: the name of the binary image column ('jpg'). */
  encodeFormat: ImageFormat;
  /** Ordered parquet schema of the meta (input columns + img2dataset's fixed columns). */
  metaColumns: ParquetColumn[];
  /** fsync data files before renaming them into place. Default true. */
  durable?: boolean;
  /** Rows per row group of the meta parquet. Default 1000 (meta rows are small). */
  metaRowGroupSize?: number;
  /** Rows per row group of output_format=parquet, which holds the images. Default 100 (img2dataset's buffer). */
  imageRowGroupSize?: number;
  /** mtime of tar members. Default: when the shard was opened. */
  mtime?: Date;
}

export interface ShardWriter {
  /** Writes one record: a parquet row always, tar members / files for successes. Awaits back-pressure. */
  write(record: SampleRecord): Promise<void>;
  /** Completes the shard: data files fsynced and renamed into place, then `{shard}_stats.json` written last. */
  close(stats: ShardStats): Promise<void>;
  /** Removes everything this writer wrote. Safe after a failed `close()` and more than once. */
  abort(): Promise<void>;
}

/** One output of a shard besides the stats: written under a temporary name, renamed into place on close. */
interface ShardPart {
  write(record: SampleRecord): Promise<void>;
  /** Flushes and fsyncs the temporary. */
  finish(): Promise<void>;
  /** Renames the temporary into place. */
  commit(): Promise<void>;
  /** Removes the temporary and the final name. */
  abort(): Promise<void>;
}

/**
 * Opens a shard for writing. Everything goes to temporary names first (`00000.tar.partial`,
 * `00000.parquet.partial`, `00000.partial/`); `close()` fsyncs and renames them into place and writes
 * `00000_stats.json` last (tmp + rename), so after a crash at any moment there is never a truncated data file
 * under its final name, and a shard without stats file is incomplete (`removePartialShards` cleans it).
 * Opening a shard removes its stats file and leftovers of an earlier attempt: a shard being rewritten is not done.
 */
export async function openShardWriter(options: ShardWriterOptions): Promise<ShardWriter> {
  validate(options);
  const { outputFolder, shardName, outputFormat, durable = true } = options;
  const paths = shardPaths(outputFolder, shardName);
  await mkdir(outputFolder, { recursive: true });
  await Promise.all(
    [paths.stats, paths.statsPartial, paths.tarPartial, paths.parquetPartial, paths.folderPartial].map((p) =>
      rm(p, { recursive: true, force: true }),
    ),
  );

  // Committed in this order: the meta parquet first, the sample data (tar / folder) last, right before the stats.
  const parts: ShardPart[] = [];
  try {
    if (outputFormat === 'parquet') {
      const columns: ParquetColumn[] = [
        ...options.metaColumns,
        { name: options.encodeFormat, type: 'BYTE_ARRAY', opaque: true },
      ];
      const writer = await openParquetWriter(paths.parquetPartial, columns, {
        rowGroupSize: options.imageRowGroupSize ?? 100,
        durable,
      });
      parts.push(parquetPart(writer, paths.parquetPartial, paths.parquet, options.encodeFormat));
    } else if (outputFormat !== 'dummy') {
      const writer = await openParquetWriter(paths.parquetPartial, options.metaColumns, {
        rowGroupSize: options.metaRowGroupSize ?? 1000,
        durable,
      });
      parts.push(parquetPart(writer, paths.parquetPartial, paths.parquet, undefined));
    }
    if (outputFormat === 'webdataset')
      parts.push(await tarPart(paths.tarPartial, paths.tar, options.mtime ?? new Date(), durable));
    if (outputFormat === 'files') parts.push(await folderPart(paths.folderPartial, paths.folder, durable));
  } catch (err) {
    await Promise.all(parts.map((p) => p.abort().catch(() => {})));
    throw err;
  }

  let state: 'open' | 'closing' | 'closed' | 'aborted' = 'open';
  const assertOpen = (what: string) => {
    if (state !== 'open') {
      throw internalError(`shard ${shardName}: ${what} after ${state === 'aborted' ? 'abort' : 'close'}`);
    }
  };

  return {
    async write(record) {
      assertOpen('write');
      assertKey(record.key);
      await Promise.all(parts.map((p) => p.write(record)));
    },
    async close(stats) {
      assertOpen('close');
      state = 'closing';
      await Promise.all(parts.map((p) => p.finish()));
      // Everything is on disk under temporary names; now only renames, back to back, so the moment where a
      // final-named data file exists without its stats file is as short as two rename(2) calls.
      await writeFile(paths.statsPartial, JSON.stringify(stats, null, 4), { flush: durable });
      for (const part of parts) await part.commit();
      await renameReplacing(paths.statsPartial, paths.stats); // the completion marker, last
      // Journaling file systems keep the order of the renames; one folder fsync makes them all durable.
      if (durable) await fsyncPath(outputFolder, { folder: true });
      state = 'closed';
    },
    async abort() {
      if (state === 'aborted') return;
      const wasClosed = state === 'closed';
      state = 'aborted';
      if (wasClosed) return; // a completed shard stays complete
      await Promise.all(parts.map((p) => p.abort().catch(() => {})));
      // A close that failed after its stats rename (folder fsync) must not leave a completion marker behind.
      await Promise.all([rm(paths.statsPartial, { force: true }), rm(paths.stats, { force: true })]);
    },
  };
}

function validate(o: ShardWriterOptions): void {
  if (!(OUTPUT_FORMATS as readonly string[]).includes(o.outputFormat)) {
    throw invalidOption(
      `Expected one of ${OUTPUT_FORMATS.join(', ')} for outputFormat but received ${String(o.outputFormat)}`,
    );
  }
  if (!/^[^./\\\0]+$/.test(o.shardName)) {
    throw invalidOption(
      `Expected a shard name without dots or slashes for shardName but received ${JSON.stringify(o.shardName)}`,
    );
  }
  const names = new Set<string>();
  for (const c of o.metaColumns) {
    if (names.has(c.name)) throw invalidOption(`Expected unique names for metaColumns but received ${c.name} twice`);
    names.add(c.name);
  }
  if (o.outputFormat === 'parquet' && names.has(o.encodeFormat)) {
    throw invalidOption(
      `Expected no meta column named ${o.encodeFormat} for metaColumns but received one: output_format=parquet stores the image there`,
    );
  }
}

async function tarPart(partial: string, final: string, mtime: Date, durable: boolean): Promise<ShardPart> {
  // flush: fsync before the file is closed.
  const file = createWriteStream(partial, { flush: durable });
  await once(file, 'ready'); // fail at open, not at the first write, when the folder is not writable
  const tar = createTarSampleStream({ mtime });
  const piped = pipeline(tar.readable, file);
  piped.catch(() => {}); // observed in finish()/abort()
  return {
    write: (record) => tar.writeSample(record),
    async finish() {
      await tar.finish();
      await piped;
    },
    commit: () => renameReplacing(partial, final),
    async abort() {
      tar.destroy();
      await piped.catch(() => {});
      await Promise.all([rm(partial, { force: true }), rm(final, { force: true })]);
    },
  };
}

async function folderPart(partial: string, final: string, durable: boolean): Promise<ShardPart> {
  await mkdir(partial, { recursive: true });
  const written: string[] = [];
  return {
    async write(record) {
      for (const member of sampleMembers(record)) {
        await writeFile(join(partial, member.name), member.data);
        written.push(member.name);
      }
    },
    async finish() {
      if (!durable) return;
      // fsync in parallel: the file system batches them into few journal commits.
      let next = 0;
      const worker = async () => {
        while (next < written.length) {
          const name = written[next++]!;
          const handle = await open(join(partial, name), 'r');
          try {
            await handle.sync();
          } finally {
            await handle.close();
          }
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      await fsyncPath(partial, { folder: true });
    },
    commit: () => renameReplacing(partial, final, { folder: true }),
    async abort() {
      await Promise.all([rm(partial, { recursive: true, force: true }), rm(final, { recursive: true, force: true })]);
    },
  };
}

function parquetPart(
  writer: ParquetRowWriter,
  partial: string,
  final: string,
  imageColumn: ImageFormat | undefined,
): ShardPart {
  return {
    write(record) {
      if (imageColumn === undefined) return writer.writeRow(record.meta);
      const image = record.status === 'success' ? (record.image?.data ?? null) : null;
      return writer.writeRow({ ...record.meta, [imageColumn]: image });
    },
    finish: () => writer.close(),
    commit: () => renameReplacing(partial, final),
    async abort() {
      await writer.abort();
      await rm(final, { force: true });
    },
  };
}
