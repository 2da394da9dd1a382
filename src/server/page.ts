import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { notFound } from '../core/errors.js';

/** Where `npm run build` puts the page (vite, web/ → dist/web): the same place from src/server and dist/server. */
export const PAGE_DIR = fileURLToPath(new URL('../../dist/web/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/** The page's files, read once into memory (~100 KB): a request can only name one of them, never a path. */
function readPage(dir: string): Map<string, { body: Buffer; type: string }> {
  const files = new Map<string, { body: Buffer; type: string }>();
  if (!existsSync(dir)) return files;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else
        files.set(`/${relative(dir, path).split(sep).join('/')}`, {
          body: readFileSync(path),
          type: TYPES[extname(name)] ?? 'application/octet-stream',
        });
    }
  };
  walk(dir);
  return files;
}

/**
 * The web page at `/` (web/, built by vite into dist/web). Its assets have content-hashed names, so they are
 * cached for good; index.html never is, so a rebuilt page shows at once.
 */
export function registerPage(app: FastifyInstance, dir = PAGE_DIR): void {
  const files = readPage(dir);
  const missing = () =>
    notFound('the web page is not built in this installation', {
      hint: 'Run `npm run build` (it builds web/ into dist/web).',
    });
  app.get('/', async (_req, reply) => {
    const index = files.get('/index.html');
    if (!index) throw missing();
    return reply.type(index.type).header('cache-control', 'no-cache').send(index.body);
  });
  app.get('/assets/*', async (req, reply) => {
    const file = files.get(req.url.split('?')[0]!);
    if (!file) throw notFound(`no such file of the page: ${req.url.split('?')[0]}`);
    return reply.type(file.type).header('cache-control', 'public, max-age=31536000, immutable').send(file.body);
  });
}
