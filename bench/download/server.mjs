// "The web" for the download benchmark, in its own process so it does not share our event loop.
// /img/{n}.jpg → one of 64 photo-like JPEGs after a latency of tens to hundreds of ms; a few % fail or are slow.
// Deterministic from n. Prints {"port":…, "meanBytes":…} on stdout when ready.
import { createServer } from 'node:http';
import { fate } from './fate.mjs';
import { photoSet } from './images.mjs';

const images = await photoSet(64);
const meanBytes = Math.round(images.reduce((a, b) => a + b.length, 0) / images.length);

const hostile = process.argv.includes('--hostile');

function trickle(res, body) {
  res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length });
  let offset = 0;
  const timer = setInterval(() => {
    res.write(body.subarray(offset, offset + 1024));
    offset += 1024;
    if (offset >= body.length) {
      clearInterval(timer);
      res.end();
    }
  }, 1000);
  res.on('close', () => clearInterval(timer));
}

const server = createServer((req, res) => {
  const match = /^\/img\/(\d+)\.jpg/.exec(req.url ?? '');
  if (!match) return res.writeHead(404).end();
  const n = Number(match[1]);
  const f = fate(n, hostile);
  if (f.kind === 'status') return setTimeout(() => res.writeHead(f.status).end('error'), 30);
  const body = images[n % images.length];
  if (f.kind === 'trickle') return trickle(res, body);
  setTimeout(() => res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length }).end(body), f.ms);
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port, meanBytes }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
