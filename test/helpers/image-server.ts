/**
 * The test image server: a real node:http server on 127.0.0.1, port 0, serving generated images of
 * known size/colour/format and every fault the web throws at a downloader. Images are made with sharp on first use
 * and cached in memory. Reused by the fetch, download, stream tests and the benchmarks.
 *
 * Routes:
 *   /img/{W}x{H}.{jpg|jpeg|png|webp}?color=rrggbb[&gradient=1][&alpha=1][&checker=N]   exact size/format/colour
 *                                                                      (checker: N-pixel squares alternating with white)
 *   /exif/{W}x{H}.jpg?orientation=6                                        JPEG with an EXIF orientation tag
 *   /status/{code}                                                         that status, small text body
 *   /ratelimit/{id}?fail=N&retry_after=S                                   429 + Retry-After: S for the first N, then an image
 *   /flaky/{id}?fail=N[&retry_after=S]                                     503 for the first N, then an image
 *   /slow-first-byte?ms=M                                                  headers and image after M ms
 *   /slow-body?ms=M                                                        headers + a few bytes, stall M ms (default: forever), then the rest
 *   /endless                                                               image/jpeg bytes forever
 *   /huge?bytes=N[&nolength=1]                                             N bytes, with or without content-length
 *   /truncated.jpg                                                         a JPEG cut in half
 *   /html                                                                  a text/html page, 200
 *   /bomb.png                                                              a 30000×30000 PNG of ~110 KB (pixel bomb)
 *   /redirect/{n}?to=URL                                                   n chained 302s ending at `to` (default an image)
 *   /redirect-loop                                                         302 to itself
 *   /robots?tag=T[&tag=T2]                                                 an image with one X-Robots-Tag header per `tag`
 *
 * Every route counts into `requests` (by pathname); `peakInFlight` is the highest number of requests open at once
 * since the last `resetStats()`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { constants as zlibConstants, crc32, deflateRawSync } from 'node:zlib';
import sharp from 'sharp';

export interface ImageServerOptions {
  /** Random latency added before every response, in ms. */
  latencyMs?: [number, number];
}

export interface ImageServer {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  url: string;
  /** pathname → number of requests received. */
  requests: Map<string, number>;
  totalRequests(): number;
  /** Requests currently open (received, response not yet closed). */
  readonly inFlight: number;
  /** Highest `inFlight` seen since start or the last `resetStats()`. */
  readonly peakInFlight: number;
  /** Clears `requests`, the peak and the per-id counters of /ratelimit and /flaky. */
  resetStats(): void;
  close(): Promise<void>;
}

type Format = 'jpg' | 'png' | 'webp';

export async function startImageServer(opts: ImageServerOptions = {}): Promise<ImageServer> {
  const requests = new Map<string, number>();
  const failCounters = new Map<string, number>();
  const cache = new Map<string, Promise<Buffer>>();
  const sockets = new Set<Socket>();
  let inFlight = 0;
  let peakInFlight = 0;

  const cached = (key: string, make: () => Promise<Buffer>): Promise<Buffer> => {
    let hit = cache.get(key);
    if (!hit) {
      hit = make();
      cache.set(key, hit);
    }
    return hit;
  };
  const defaultImage = () => cached('default', () => solidImage(32, 32, 'jpg', '3366cc', false, false));

  /** Counts how often `id` was hit and says whether this request is still within the first `fail`. */
  const shouldFail = (route: string, id: string, fail: number): boolean => {
    const key = `${route}/${id}`;
    const seen = failCounters.get(key) ?? 0;
    failCounters.set(key, seen + 1);
    return seen < fail;
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const q = url.searchParams;
    const num = (name: string, fallback: number) => {
      const v = q.get(name);
      return v === null || v === '' || !Number.isFinite(Number(v)) ? fallback : Number(v);
    };

    if (opts.latencyMs) {
      const [min, max] = opts.latencyMs;
      await sleep(min + Math.random() * (max - min));
      if (res.destroyed) return;
    }

    let m: RegExpMatchArray | null;
    if ((m = path.match(/^\/img\/(\d+)x(\d+)\.(jpg|jpeg|png|webp)$/))) {
      const [w, h] = [Number(m[1]), Number(m[2])];
      if (!validSize(w, h)) return text(res, 400, 'size out of range');
      const format = (m[3] === 'jpeg' ? 'jpg' : m[3]) as Format;
      const color = parseColor(q.get('color'));
      const gradient = q.get('gradient') === '1';
      const alpha = q.get('alpha') === '1' && format !== 'jpg';
      const checker = num('checker', 0);
      const key = `img:${w}x${h}.${format}:${color}:${gradient}:${alpha}:${checker}`;
      return image(res, format, await cached(key, () => solidImage(w, h, format, color, gradient, alpha, checker)));
    }
    if ((m = path.match(/^\/exif\/(\d+)x(\d+)\.jpg$/))) {
      const [w, h] = [Number(m[1]), Number(m[2])];
      if (!validSize(w, h)) return text(res, 400, 'size out of range');
      const orientation = num('orientation', 1);
      if (!Number.isInteger(orientation) || orientation < 1 || orientation > 8)
        return text(res, 400, 'orientation must be 1..8');
      const color = parseColor(q.get('color'));
      const key = `exif:${w}x${h}:${orientation}:${color}`;
      return image(res, 'jpg', await cached(key, () => exifImage(w, h, color, orientation)));
    }
    if ((m = path.match(/^\/status\/(\d{3})$/))) {
      return text(res, Number(m[1]), `status ${m[1]}`);
    }
    if ((m = path.match(/^\/ratelimit\/([^/]+)$/))) {
      if (shouldFail('ratelimit', m[1]!, num('fail', 1))) {
        res.setHeader('Retry-After', String(q.get('retry_after') ?? '1'));
        return text(res, 429, 'Too Many Requests');
      }
      return image(res, 'jpg', await defaultImage());
    }
    if ((m = path.match(/^\/flaky\/([^/]+)$/))) {
      if (shouldFail('flaky', m[1]!, num('fail', 1))) {
        const retryAfter = q.get('retry_after');
        if (retryAfter !== null) res.setHeader('Retry-After', retryAfter);
        return text(res, 503, 'Service Unavailable');
      }
      return image(res, 'jpg', await defaultImage());
    }
    if (path === '/slow-first-byte') {
      const body = await defaultImage();
      await sleepUnlessClosed(res, num('ms', 1000));
      return image(res, 'jpg', body);
    }
    if (path === '/slow-body') {
      const body = await defaultImage();
      res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': body.length });
      res.write(body.subarray(0, 8));
      await sleepUnlessClosed(res, num('ms', 24 * 3600 * 1000));
      if (!res.destroyed) res.end(body.subarray(8));
      return;
    }
    if (path === '/endless') {
      res.writeHead(200, { 'Content-Type': 'image/jpeg' });
      const chunk = Buffer.alloc(16 * 1024, 0xab);
      while (!res.destroyed) {
        if (!res.write(chunk)) await drained(res);
        else await sleep(1);
      }
      return;
    }
    if (path === '/huge') {
      const total = num('bytes', 100 * 1024 * 1024);
      const headers: Record<string, string | number> = { 'Content-Type': 'image/jpeg' };
      if (q.get('nolength') !== '1') headers['Content-Length'] = total;
      res.writeHead(200, headers);
      const chunk = Buffer.alloc(64 * 1024, 0xcd);
      let sent = 0;
      while (sent < total && !res.destroyed) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) await drained(res);
      }
      if (!res.destroyed) res.end();
      return;
    }
    if (path === '/truncated.jpg') {
      const full = await cached('truncated-source', () => solidImage(256, 256, 'jpg', 'cc8844', true, false));
      return image(res, 'jpg', full.subarray(0, Math.floor(full.length / 2)));
    }
    if (path === '/html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><html><head><title>Not an image</title></head><body><p>Hello</p></body></html>');
      return;
    }
    if (path === '/bomb.png') {
      return image(res, 'png', await cached('bomb', async () => pixelBombPng(30000, 30000)));
    }
    if ((m = path.match(/^\/redirect\/(\d+)$/))) {
      const n = Number(m[1]);
      const to = q.get('to') ?? '/img/32x32.jpg';
      const next = n <= 1 ? to : `/redirect/${n - 1}?to=${encodeURIComponent(to)}`;
      res.writeHead(302, { Location: next, 'Content-Type': 'text/plain' });
      res.end('redirect');
      return;
    }
    if (path === '/redirect-loop') {
      res.writeHead(302, { Location: '/redirect-loop', 'Content-Type': 'text/plain' });
      res.end('loop');
      return;
    }
    if (path === '/robots') {
      res.setHeader('X-Robots-Tag', q.getAll('tag'));
      return image(res, 'jpg', await defaultImage());
    }
    return text(res, 404, 'not found');
  }

  const server = createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    requests.set(pathname, (requests.get(pathname) ?? 0) + 1);
    inFlight++;
    peakInFlight = Math.max(peakInFlight, inFlight);
    res.once('close', () => inFlight--);
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) text(res, 500, `image server error: ${String(err)}`);
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 5000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    totalRequests: () => [...requests.values()].reduce((a, b) => a + b, 0),
    get inFlight() {
      return inFlight;
    },
    get peakInFlight() {
      return peakInFlight;
    },
    resetStats() {
      requests.clear();
      failCounters.clear();
      peakInFlight = inFlight;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
      }),
  };
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function image(res: ServerResponse, format: Format, body: Buffer): void {
  const type = format === 'jpg' ? 'image/jpeg' : `image/${format}`;
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length });
  res.end(body);
}

function validSize(w: number, h: number): boolean {
  return w >= 1 && h >= 1 && w <= 8192 && h <= 8192;
}

function parseColor(value: string | null): string {
  return value !== null && /^[0-9a-fA-F]{6}$/.test(value) ? value.toLowerCase() : 'ff0000';
}

function rgb(color: string): [number, number, number] {
  return [0, 2, 4].map((i) => parseInt(color.slice(i, i + 2), 16)) as [number, number, number];
}

/**
 * A solid image of `color`; `gradient` fades it to black from left to right; `alpha` makes the left half fully
 * transparent (PNG/WebP only); `checker` > 0 turns every other `checker`-pixel square white (detail to blur).
 */
async function solidImage(
  w: number,
  h: number,
  format: Format,
  color: string,
  gradient: boolean,
  alpha: boolean,
  checker = 0,
): Promise<Buffer> {
  const [r, g, b] = rgb(color);
  const channels = alpha ? 4 : 3;
  const raw = Buffer.alloc(w * h * channels);
  for (let x = 0; x < w; x++) {
    const k = gradient ? 1 - x / Math.max(1, w - 1) : 1;
    const px = [Math.round(r * k), Math.round(g * k), Math.round(b * k), alpha && x < w / 2 ? 0 : 255];
    for (let y = 0; y < h; y++) {
      const o = (y * w + x) * channels;
      const white = checker > 0 && (Math.floor(x / checker) + Math.floor(y / checker)) % 2 === 1;
      for (let c = 0; c < channels; c++) raw[o + c] = white && c < 3 ? 255 : px[c]!;
    }
  }
  const img = sharp(raw, { raw: { width: w, height: h, channels } });
  if (format === 'jpg') return img.jpeg({ quality: 95 }).toBuffer();
  if (format === 'png') return img.png().toBuffer();
  return img.webp({ lossless: true }).toBuffer();
}

async function exifImage(w: number, h: number, color: string, orientation: number): Promise<Buffer> {
  const [r, g, b] = rgb(color);
  return sharp({ create: { width: w, height: h, channels: 3, background: { r, g, b } } })
    .jpeg({ quality: 95 })
    .withMetadata({ orientation })
    .toBuffer();
}

/**
 * A valid 1-bit greyscale PNG of w×h black pixels, written by hand so it costs milliseconds: every row is zeros,
 * so one deflate block of many zero rows is repeated (each block is independent) and the Adler-32 of n zero bytes
 * is simply (n mod 65521) << 16 | 1.
 */
export function pixelBombPng(w: number, h: number): Buffer {
  const rowBytes = 1 + Math.ceil(w / 8);
  const rowsPerBlock = 1000;
  const block = deflateRawSync(Buffer.alloc(rowBytes * rowsPerBlock), {
    level: 9,
    finishFlush: zlibConstants.Z_SYNC_FLUSH,
  });
  const blocks: Buffer[] = [Buffer.from([0x78, 0xda])];
  let rows = 0;
  while (rows < h) {
    const n = Math.min(rowsPerBlock, h - rows);
    blocks.push(
      n === rowsPerBlock
        ? block
        : deflateRawSync(Buffer.alloc(rowBytes * n), { level: 9, finishFlush: zlibConstants.Z_SYNC_FLUSH }),
    );
    rows += n;
  }
  blocks.push(Buffer.from([0x03, 0x00])); // final, empty, fixed-Huffman block
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((rowBytes * h) % 65521) * 65536 + 1) >>> 0);
  blocks.push(adler);

  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([1, 0, 0, 0, 0], 8); // bit depth 1, greyscale, deflate, adaptive filtering, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', Buffer.concat(blocks)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0);
  return Buffer.concat([head, data, crc]);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when `res` can take more data or has closed (listeners removed either way). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Waits `ms`, or less if the client goes away first (so stalled routes never outlive their socket). */
function sleepUnlessClosed(res: ServerResponse, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    res.once('close', done);
    function done() {
      clearTimeout(timer);
      res.off('close', done);
      resolve();
    }
  });
}
