/**
 * The one way to read bytes of a file in place (.npy, faiss indexes, parquet and Arrow metadata): a local file
 * (positioned reads on one FileHandle) or an http(s) URL (one HTTP Range request per read, on a small keep-alive
 * undici Agent with connect/headers/body timeouts, redirects followed). A read fetches exactly the bytes asked for,
 * so memory follows the caller's range, never the file. An `s3://` object (s3.ts: one ranged GetObject per read).
 * `openByteSource` picks the kind by URL scheme; `withBlockCache` (block-cache.ts) adds a cache bounded in bytes in front of any source.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { ClipstreamError, inputMalformed, inputNotFound } from '../core/errors.js';
import { isS3Url, s3ReadRange, s3Size } from './s3.js';

const truncated = (message: string) =>
  inputMalformed(`truncated: ${message}`, {
    hint: 'The file was cut short (an interrupted copy or download?) or its header claims more than it holds; copy or rebuild it.',
  });

export interface ByteSource {
  /** Path or URL, for messages. */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Fills `into` with the bytes at `[offset, offset + into.length)`; throws if they are not all there. */
  readInto(offset: number, into: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export interface HttpSourceOptions {
  /** Connect, response-headers and body-idle timeout per request, ms. Default 30 000. */
  timeoutMs?: number;
  /** Retries of a failed range request (network error, 5xx, short body), with a short backoff. Default 2. */
  retries?: number;
  /** Use this dispatcher instead of a private Agent (not closed by `close()`). */
  dispatcher?: Dispatcher;
}

export function isHttpUrl(pathOrUrl: string): boolean {
  return /^https?:\/\//i.test(pathOrUrl);
}

/** Opens a local file and reads its first `probe` bytes (fewer if the file is shorter). */
export async function openFileSource(path: string, probe: number): Promise<{ source: ByteSource; head: Uint8Array }> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw inputNotFound(`no such file: ${path}`, { cause: err });
    if (code === 'EISDIR') throw inputMalformed(`expected a file but ${path} is a folder`, { cause: err });
    throw err;
  }
  try {
    const { size } = await handle.stat();
    const source: ByteSource = {
      name: path,
      size,
      async readInto(offset, into) {
        let done = 0;
        while (done < into.length) {
          const { bytesRead } = await handle.read(into, done, into.length - done, offset + done);
          if (bytesRead === 0)
            throw truncated(`${path} ended at byte ${offset + done}, expected ${offset + into.length}`);
          done += bytesRead;
        }
      },
      close: () => handle.close(),
    };
    const head = new Uint8Array(Math.min(probe, size));
    await source.readInto(0, head);
    return { source, head };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * Opens a URL: one Range request for the first `probe` bytes, which also proves range support (206) and gives the
 * total size (Content-Range). A server that answers 200 (ignores Range) is refused without reading the body.
 */
export async function openHttpSource(
  url: string,
  probe: number,
  opts: HttpSourceOptions = {},
): Promise<{ source: ByteSource; head: Uint8Array }> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const retries = opts.retries ?? 2;
  const own = opts.dispatcher
    ? undefined
    : new Agent({
        connectTimeout: Math.min(timeoutMs, 10_000),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        connections: 16,
      });
  const dispatcher = opts.dispatcher ?? own!.compose(interceptors.redirect({ maxRedirections: 5 }));

  /** One range request; resolves with the total size from Content-Range. */
  const fetchRange = async (offset: number, into: Uint8Array): Promise<number> => {
    const last = offset + into.length - 1;
    const res = await request(url, {
      dispatcher,
      method: 'GET',
      headers: { range: `bytes=${offset}-${last}`, 'accept-encoding': 'identity' },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    try {
      if (res.statusCode === 416) {
        const total = /\/(\d+)\s*$/.exec(String(res.headers['content-range'] ?? ''));
        if (total && offset === 0) return Number(total[1]); // an empty file: the caller reports it as truncated
        throw truncated(`${url} has no bytes at ${offset}-${last} (HTTP 416)`);
      }
      if (res.statusCode === 200) {
        throw inputMalformed(
          `${url} does not support HTTP range requests (answered 200 with the whole file, Accept-Ranges: ${String(res.headers['accept-ranges'] ?? 'absent')}); refusing to download it whole`,
          {
            hint: 'Serve the file from a server with byte-range support (S3, GCS, Hugging Face, nginx do), or download it first.',
          },
        );
      }
      if (res.statusCode === 404 || res.statusCode === 410 || res.statusCode === 403 || res.statusCode === 401) {
        throw inputNotFound(`cannot read ${url}: HTTP ${res.statusCode}`);
      }
      if (res.statusCode !== 206) {
        throw new RetryableError(`HTTP ${res.statusCode}`);
      }
      const range = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? '').trim());
      if (!range || Number(range[1]) !== offset) {
        throw inputMalformed(
          `${url} answered a range request with Content-Range "${String(res.headers['content-range'])}", expected bytes ${offset}-${last}`,
        );
      }
      if (range[3] === '*') throw inputMalformed(`${url} does not report its size in Content-Range`);
      const total = Number(range[3]);
      const expected = Math.min(into.length, total - offset);
      let got = 0;
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        if (got + chunk.length > expected)
          throw inputMalformed(`${url} sent more bytes than the range ${offset}-${last} asked for`);
        into.set(chunk, got);
        got += chunk.length;
      }
      // (`expected` < into.length only for the probe of a file shorter than it; later reads are bounds-checked.)
      if (got < expected) throw new RetryableError(`short body: ${got} of ${expected} bytes`);
      return total;
    } finally {
      // Unread bodies (errors, a 200 to a Range request) are dropped, not downloaded; the abort error is expected.
      if (!res.body.destroyed) res.body.on('error', () => {}).destroy();
    }
  };

  const withRetries = async (offset: number, into: Uint8Array): Promise<number> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fetchRange(offset, into);
      } catch (err) {
        if (err instanceof ClipstreamError || attempt >= retries) {
          if (err instanceof ClipstreamError) throw err;
          throw inputNotFound(
            `cannot read ${url} (bytes ${offset}-${offset + into.length - 1}): ${(err as Error).message}`,
            {
              cause: err,
            },
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
      }
    }
  };

  try {
    const first = new Uint8Array(Math.max(1, probe));
    const size = await withRetries(0, first);
    const head = first.subarray(0, Math.min(probe, size));
    const source: ByteSource = {
      name: url,
      size,
      async readInto(offset, into) {
        if (into.length === 0) return;
        if (offset + into.length > size)
          throw truncated(`${url} ends at byte ${size}, expected ${offset + into.length}`);
        await withRetries(offset, into);
      },
      async close() {
        await own?.close();
      },
    };
    return { source, head };
  } catch (err) {
    await own?.close();
    throw err;
  }
}

class RetryableError extends Error {}

export interface OpenByteSourceOptions {
  /** Bytes to read at open (fewer if the file is shorter), returned as `head`: one request for a header. Default 0. */
  probe?: number;
  /** For http(s) URLs. */
  http?: HttpSourceOptions;
}

/** Opens an `s3://bucket/key` object: its size from a HEAD request, then one ranged GET per read. */
export async function openS3Source(url: string, probe: number): Promise<{ source: ByteSource; head: Uint8Array }> {
  const size = await s3Size(url);
  if (size === undefined) throw inputNotFound(`no such object: ${url}`);
  const source: ByteSource = {
    name: url,
    size,
    async readInto(offset, into) {
      if (offset + into.length > size) throw truncated(`${url} ends at byte ${size}, expected ${offset + into.length}`);
      await s3ReadRange(url, offset, into);
    },
    close: async () => {},
  };
  const head = new Uint8Array(Math.min(probe, size));
  await source.readInto(0, head);
  return { source, head };
}

/** Opens a local path, a `file://` URL, an http(s) URL or an `s3://` URL as a ByteSource, by scheme. */
export async function openByteSource(
  pathOrUrl: string,
  opts: OpenByteSourceOptions = {},
): Promise<{ source: ByteSource; head: Uint8Array }> {
  const probe = opts.probe ?? 0;
  if (isHttpUrl(pathOrUrl)) return openHttpSource(pathOrUrl, probe, opts.http);
  if (isS3Url(pathOrUrl)) return openS3Source(pathOrUrl, probe);
  if (/^file:\/\//i.test(pathOrUrl)) return openFileSource(fileURLToPath(pathOrUrl), probe);
  if (/^[a-z][a-z0-9+.-]+:\/\//i.test(pathOrUrl)) {
    throw inputNotFound(
      `cannot read ${pathOrUrl}: only local paths, file://, http(s):// and s3:// URLs are supported`,
      {
        hint: 'Download the file first, or serve it over HTTP with range support.',
      },
    );
  }
  return openFileSource(pathOrUrl, probe);
}

/**
 * The bytes of a source from `start`, read sequentially in `chunk`-byte reads: a text file (a url list) streamed
 * from any kind of source with memory bounded by one chunk.
 */
export async function* sequentialChunks(source: ByteSource, start = 0, chunk = 4 << 20): AsyncGenerator<Uint8Array> {
  for (let offset = start; offset < source.size; offset += chunk) {
    yield await readBytes(source, offset, Math.min(chunk, source.size - offset));
  }
}

/** The bytes at `[offset, offset + length)` in a new buffer. */
export async function readBytes(source: ByteSource, offset: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await source.readInto(offset, out);
  return out;
}
