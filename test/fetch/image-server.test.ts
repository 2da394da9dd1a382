/** The shared image server fixture serves what it promises (other suites build on these routes). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { createFetcher, type Fetcher } from '../../src/fetch/index.js';
import { startImageServer, type ImageServer } from '../helpers/image-server.js';

let server: ImageServer;
let fetcher: Fetcher;
beforeAll(async () => {
  server = await startImageServer();
  fetcher = createFetcher({ allowPrivateNetworks: true, timeoutMs: 5000 });
});
afterAll(async () => {
  await fetcher.close();
  await server.close();
});

async function get(path: string): Promise<Buffer> {
  const out = await fetcher.fetch(`${server.url}${path}`);
  if (!out.ok) throw new Error(`${path}: ${out.message}`);
  return out.bytes;
}

describe('image server', () => {
  it.each([
    ['/img/64x48.jpg?color=ff0000', 64, 48, 'jpeg', [255, 0, 0]],
    ['/img/20x30.png?color=00ff00', 20, 30, 'png', [0, 255, 0]],
    ['/img/33x17.webp?color=0000ff', 33, 17, 'webp', [0, 0, 255]],
  ] as const)('%s has exact size, format and colour', async (path, w, h, format, rgb) => {
    const bytes = await get(path);
    const meta = await sharp(bytes).metadata();
    expect([meta.width, meta.height, meta.format]).toEqual([w, h, format]);
    const { channels } = await sharp(bytes).stats();
    channels.slice(0, 3).forEach((c, i) => expect(Math.abs(c.mean - rgb[i]!)).toBeLessThan(3));
  });

  it('gives PNG and WebP a transparent region with alpha=1', async () => {
    for (const f of ['png', 'webp']) {
      const bytes = await get(`/img/40x40.${f}?color=123456&alpha=1`);
      const stats = await sharp(bytes).stats();
      expect(stats.channels[3]?.min).toBe(0);
      expect(stats.channels[3]?.max).toBe(255);
    }
  });

  it('serves a JPEG with an EXIF orientation', async () => {
    const meta = await sharp(await get('/exif/40x20.jpg?orientation=6')).metadata();
    expect([meta.width, meta.height, meta.orientation]).toEqual([40, 20, 6]);
  });

  it('serves a small pixel bomb and a truncated JPEG', async () => {
    const bomb = await get('/bomb.png');
    expect(bomb.length).toBeLessThan(200_000);
    await expect(sharp(bomb, { limitInputPixels: false }).metadata()).resolves.toMatchObject({
      width: 30000,
      height: 30000,
    });
    await expect(sharp(bomb).metadata()).rejects.toThrow(/pixel limit/);
    const truncated = await get('/truncated.jpg');
    await expect(sharp(truncated).toBuffer()).rejects.toThrow();
  });

  it('counts requests per pathname and closes with stalled requests open', async () => {
    const other = await startImageServer();
    const stalled = createFetcher({ allowPrivateNetworks: true, timeoutMs: 10_000 });
    const pending = stalled.fetch(`${other.url}/slow-body`);
    await new Promise((r) => setTimeout(r, 100));
    expect(other.requests.get('/slow-body')).toBe(1);
    expect(other.totalRequests()).toBe(1);
    const start = performance.now();
    await other.close();
    expect(performance.now() - start).toBeLessThan(1000);
    expect((await pending).ok).toBe(false);
    await stalled.close();
  });
});
