import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

/**
 * The demo world: a local image server of generated images with known colours, so a person (and a test) can see
 * that the right images came out. Deterministic: image `n` always has the same colour, size and fate.
 */

export const palette = [
  { name: 'red', rgb: [220, 30, 30] },
  { name: 'green', rgb: [30, 170, 60] },
  { name: 'blue', rgb: [30, 60, 210] },
  { name: 'yellow', rgb: [235, 210, 40] },
  { name: 'purple', rgb: [130, 40, 170] },
  { name: 'orange', rgb: [240, 130, 20] },
] as const;

export type DemoFate = 'ok' | 'dead' | 'not_an_image';

export interface DemoImage {
  id: number;
  colour: (typeof palette)[number]['name'];
  rgb: readonly [number, number, number];
  width: number;
  height: number;
  fate: DemoFate;
  caption: string;
}

/** Every 9th link is dead and every 23rd serves a web page: real lists have both. */
export function demoImage(id: number): DemoImage {
  const colour = palette[id % palette.length]!;
  const width = 240 + ((id * 37) % 7) * 60;
  const height = 200 + ((id * 53) % 5) * 70;
  const fate: DemoFate = id % 9 === 4 ? 'dead' : id % 23 === 11 ? 'not_an_image' : 'ok';
  return {
    id,
    colour: colour.name,
    rgb: colour.rgb,
    width,
    height,
    fate,
    caption: `a photo of a ${colour.name} thing, number ${id}`,
  };
}

/** A soft diagonal gradient around the base colour, so thumbnails look like pictures rather than flat swatches. */
export async function renderDemoImage(img: DemoImage): Promise<Buffer> {
  const { width, height, rgb } = img;
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const shade = 0.8 + 0.4 * ((x / width + y / height) / 2);
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) pixels[o + c] = Math.min(255, Math.round(rgb[c]! * shade));
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
}

export interface DemoServer {
  url: string;
  requests(): number;
  close(): Promise<void>;
}

export async function startDemoServer(): Promise<DemoServer> {
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    const match = /^\/images\/(\d+)\.jpg$/.exec(req.url ?? '');
    const id = match ? Number(match[1]) : NaN;
    if (!Number.isSafeInteger(id)) {
      res.writeHead(404).end('not found');
      return;
    }
    const img = demoImage(id);
    if (img.fate === 'dead') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('gone');
      return;
    }
    if (img.fate === 'not_an_image') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>This image has moved.</body></html>');
      return;
    }
    renderDemoImage(img).then(
      (body) => res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
