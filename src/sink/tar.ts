import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { internalError } from '../core/errors.js';
import type { SampleRecord } from '../core/types.js';
import { sampleMembers, type SampleMember } from './members.js';

export interface TarSampleStreamOptions {
  /** mtime of every member. Default: the time the stream was created (one value for the whole archive). */
  mtime?: Date;
  /** Bytes the Node readable buffers before `writeSample` waits. Default 64 KiB. */
  highWaterMark?: number;
}

export interface TarSampleStream {
  /** The webdataset tar: pipe it to a file, stdout or an HTTP response. */
  readonly readable: Readable;
  /**
   * Appends the sample's members (image, txt, json; none for a failed record), contiguous even when calls
   * overlap. Resolves once the members are handed to `readable` within its buffer limit, so awaiting it is the
   * back-pressure: at most about one sample plus the high-water marks is buffered.
   */
  writeSample(record: SampleRecord): Promise<void>;
  /** Writes the end-of-archive blocks; resolves once everything is handed to `readable`. */
  finish(): Promise<void>;
  /**
   * Ends the archive with one last member and WITHOUT the end-of-archive blocks, so tar readers see it as cut
   * short: how a stream that failed says why (its `__error__.json`) and still reads as incomplete.
   */
  cut(last: SampleMember): Promise<void>;
  /** Stops the archive; pending and later `writeSample` calls reject. */
  destroy(err?: Error): void;
  /** Tar bytes handed to `readable` so far. */
  readonly bytesWritten: number;
}

/**
 * A webdataset tar as a stream: ustar headers (pax for names over 100 bytes), mode 0644, uid/gid 0, one mtime.
 * tar-stream's pack is a streamx stream; it is bridged to a Node `Readable` that pauses the pack while its own
 * buffer is full, so a slow consumer stops the producer.
 */
export function createTarSampleStream({
  mtime = new Date(),
  highWaterMark = 64 * 1024,
}: TarSampleStreamOptions = {}): TarSampleStream {
  const pack = tar.pack();
  let bytesWritten = 0;
  let finishing: Promise<void> | undefined;
  let failure: Error | undefined;
  /** cut(): tar-stream's finalize pushes its 1024 zero bytes (END_OF_TAR) as one chunk; it is left out. */
  let dropEndOfArchive = false;

  const readable = new Readable({
    highWaterMark,
    read() {
      pack.resume();
    },
    destroy(err, callback) {
      failure ??= err ?? internalError('tar stream destroyed');
      pack.destroy(failure);
      callback(err);
    },
  });
  pack.on('data', (data: unknown) => {
    const chunk = data as Buffer;
    if (dropEndOfArchive && chunk.length === 1024 && chunk.every((b) => b === 0)) return;
    bytesWritten += chunk.length;
    if (!readable.push(chunk)) pack.pause();
  });
  const ended = new Promise<void>((resolve, reject) => {
    pack.on('end', () => {
      readable.push(null);
      resolve();
    });
    pack.on('error', (err: Error) => {
      failure ??= err;
      readable.destroy(err);
      reject(err);
    });
    pack.on('close', () => {
      if (failure) reject(failure);
    });
  });
  ended.catch(() => {}); // observed through finish()

  const entry = (name: string, data: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      const sink = pack.entry(
        { name, size: data.length, mode: 0o644, mtime, uid: 0, gid: 0, type: 'file' },
        data,
        (err) => (err ? reject(failure ?? err) : resolve()),
      );
      sink.on('error', () => {}); // reported through the callback
    });

  return {
    readable,
    get bytesWritten() {
      return bytesWritten;
    },
    async writeSample(record) {
      if (failure) throw failure;
      if (finishing) throw internalError('writeSample after finish on a tar sample stream');
      const members = sampleMembers(record);
      // Queue every member synchronously: tar-stream writes entries in queue order, so samples stay contiguous.
      await Promise.all(members.map((m) => entry(m.name, m.data)));
    },
    finish() {
      if (failure) return Promise.reject(failure);
      finishing ??= (() => {
        pack.finalize();
        return ended;
      })();
      return finishing;
    },
    async cut(last) {
      if (failure) throw failure;
      if (finishing) throw internalError('cut after finish on a tar sample stream');
      const written = entry(last.name, last.data);
      finishing = (async () => {
        await written;
        dropEndOfArchive = true;
        pack.finalize();
        await ended;
      })();
      return finishing;
    },
    destroy(err) {
      readable.destroy(err);
    },
  };
}
