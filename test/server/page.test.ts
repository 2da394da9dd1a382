import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { errorReply } from '../../src/server/app.js';
import { registerPage } from '../../src/server/page.js';
import { tempDir } from '../helpers/tmp.js';

const apps: { close(): Promise<unknown> }[] = [];
afterAll(async () => {
  for (const app of apps) await app.close();
});

async function pageServer(dir: string): Promise<string> {
  const app = Fastify();
  app.setErrorHandler((err, _req, reply) => {
    const { status, body } = errorReply(err as Parameters<typeof errorReply>[0]);
    return reply.code(status).send(body);
  });
  registerPage(app, dir);
  apps.push(app);
  return app.listen({ port: 0, host: '127.0.0.1' });
}

describe('the page files', () => {
  it('serves index.html (not cached) and hashed assets (cached for good); nothing outside the build', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'assets'));
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>x</title>');
    await writeFile(join(dir, 'assets', 'index-abc.js'), 'console.log(1)');
    await writeFile(join(dir, 'secret.txt'), 'not an asset');
    const base = await pageServer(dir);
    const index = await fetch(`${base}/`);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const js = await fetch(`${base}/assets/index-abc.js`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toContain('immutable');
    for (const path of ['/assets/nope.js', '/assets/../secret.txt', '/assets/%2e%2e/secret.txt', '/secret.txt']) {
      expect((await fetch(base + path)).status).toBe(404);
    }
  });

  it('an installation without the built page says how to build it', async () => {
    const base = await pageServer(join(await tempDir(), 'missing'));
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { hint: string }).hint).toContain('npm run build');
  });
});
