import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';

export interface RangeServer {
  /** http://127.0.0.1:PORT — paths below it are paths below `root`. */
  base: string;
  /** Body bytes sent, per path. */
  sent: Map<string, number>;
  requests: { path: string; range: string | undefined; status: number }[];
  totalSent(): number;
  close(): Promise<void>;
}

/**
 * Serves a folder over HTTP with byte ranges (206 + Content-Range), as S3 / Hugging Face / nginx do, counting the
 * bytes it sends; `delayMs` per request imitates a distant server. 127.0.0.1 on a random port.
 */
export async function serveFolder(root: string, opts: { delayMs?: number } = {}): Promise<RangeServer> {
  const sent = new Map<string, number>();
  const requests: RangeServer['requests'] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const entry = { path, range: req.headers.range, status: 404 };
      requests.push(entry);
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      const file = join(root, normalize(path).replace(/^(\.\.[/\\])+/, ''));
      const info = await stat(file).catch(() => undefined);
      if (!info?.isFile()) {
        res.writeHead(404).end();
        return;
      }
      const match = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      const start = match ? Number(match[1]) : 0;
      const end = match && match[2] ? Math.min(Number(match[2]), info.size - 1) : info.size - 1;
      if (match && start >= info.size) {
        entry.status = 416;
        res.writeHead(416, { 'content-range': `bytes */${info.size}` }).end();
        return;
      }
      entry.status = match ? 206 : 200;
      res.writeHead(entry.status, {
        'accept-ranges': 'bytes',
        'content-length': end - start + 1,
        ...(match ? { 'content-range': `bytes ${start}-${end}/${info.size}` } : {}),
      });
      sent.set(path, (sent.get(path) ?? 0) + end - start + 1);
      createReadStream(file, { start, end }).pipe(res);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sent,
    requests,
    totalSent: () => [...sent.values()].reduce((a, b) => a + b, 0),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
