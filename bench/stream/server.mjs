// The image server of bench/stream, in its own process: bench/download's web (same 64 photo-like JPEGs, same fate
// per url: log-uniform 20–400 ms latency, 1.5 % 404, 1 % 500, 2 % slow 1–3 s), plus what the stream benches need:
//   --port N       a fixed port (the cached 1 M-row index holds urls with it); default 0 = any free port
//   --tiny         64×48 JPEGs (~1.5 KB) instead of ~62 KB photos: 100 k samples in minutes
//   --no-latency   answer at once (errors and their status codes stay)
// /img/{n}.jpg as in bench/download. Prints {"port":…, "meanBytes":…} on stdout when ready.
import { createServer } from 'node:http';
import { fate } from '../download/fate.mjs';
import { photoLikeJpeg, photoSet } from '../download/images.mjs';

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const portArg = argv.indexOf('--port');
const port = portArg === -1 ? 0 : Number(argv[portArg + 1]);
const tiny = flag('tiny');
const latency = !flag('no-latency');

const images = tiny
  ? await Promise.all(Array.from({ length: 64 }, (_, i) => photoLikeJpeg(i, 64, 48)))
  : await photoSet(64);
const meanBytes = Math.round(images.reduce((a, b) => a + b.length, 0) / images.length);

const server = createServer((req, res) => {
  const match = /^\/img\/(\d+)\.jpg/.exec(req.url ?? '');
  if (!match) return res.writeHead(404).end();
  const n = Number(match[1]);
  const f = fate(n);
  const after = (ms, send) => (latency ? setTimeout(send, ms) : send());
  if (f.kind === 'status') return after(30, () => res.writeHead(f.status).end('error'));
  const body = images[n % images.length];
  after(f.ms, () => res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length }).end(body));
});
server.keepAliveTimeout = 30_000;
server.on('error', (err) => {
  process.stderr.write(`bench/stream server: ${err.message}\n`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port, meanBytes }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
