import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { inputMalformed, inputNotFound, isClipstreamError } from '../core/errors.js';

/** A webdataset sample: members sharing a key, by extension (`{ __key__, jpg, txt, json }`). */
export interface TarSample {
  __key__: string;
  [extension: string]: Buffer | string;
}

/**
 * Streams the samples of a webdataset tar, grouping consecutive members by key the way webdataset does
 * (key = path up to the first dot of the file name). Members larger than `maxMemberBytes` are refused.
 */
export async function* readTarSamples(
  source: string | Readable,
  { maxMemberBytes = 64 * 1024 * 1024 }: { maxMemberBytes?: number } = {},
): AsyncGenerator<TarSample> {
  const name = typeof source === 'string' ? source : 'tar stream';
  const input = typeof source === 'string' ? createReadStream(source) : source;
  const extract = tar.extract();
  input.on('error', (err: Error) => extract.destroy(err));
  input.pipe(extract);
  let current: TarSample | undefined;
  try {
    for await (const entry of extract) {
      const header = entry.header;
      if (header.type !== 'file') {
        entry.resume();
        continue;
      }
      if ((header.size ?? 0) > maxMemberBytes) {
        throw inputMalformed(
          `${name}: member ${header.name} is ${header.size} bytes, over the ${maxMemberBytes} byte limit`,
        );
      }
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const split = splitKey(header.name);
      if (!split) continue;
      if (current && current.__key__ !== split.key) {
        yield current;
        current = undefined;
      }
      current ??= { __key__: split.key };
      current[split.ext] = Buffer.concat(chunks);
    }
  } catch (err) {
    if (isClipstreamError(err)) throw err;
    if ((err as { code?: string }).code === 'ENOENT') throw inputNotFound(`tar file not found: ${name}`);
    throw inputMalformed(`${name} is not a readable tar file: ${(err as Error).message}`, { cause: err });
  }
  if (current) yield current;
}

/** webdataset's base_plus_ext: `dir/abc.seg.png` → key `dir/abc`, ext `seg.png`. */
export function splitKey(path: string): { key: string; ext: string } | undefined {
  const match = /^((?:.*\/|)[^./]+)\.([^/]*)$/.exec(path);
  if (!match) return undefined;
  return { key: match[1]!, ext: match[2]!.toLowerCase() };
}
