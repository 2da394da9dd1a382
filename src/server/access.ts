import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { forbidden, unauthorized } from '../core/errors.js';

/** The cookie the page keeps the token in, once it was opened with `?token=`. */
export const TOKEN_COOKIE = 'clipstream_token';

/**
 * Every request, page and API alike, must carry the server's token: `Authorization: Bearer TOKEN` (scripts, the
 * Python client), the `clipstream_token` cookie (the page, after its first visit), or `?token=TOKEN` (a link to the
 * page; the answer sets the cookie, so the page keeps it). Compared in constant time (over hashes, so that the
 * length does not show either). A request without it is a 401 before any route runs.
 */
export function registerAccessCheck(app: FastifyInstance, token: string): void {
  const expected = digest(token);
  const matches = (given: string | undefined) => given !== undefined && timingSafeEqual(digest(given), expected);
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const fromQuery = queryToken(req.url);
    if (matches(bearer(req.headers.authorization)) || matches(cookie(req.headers.cookie, TOKEN_COOKIE))) return;
    if (matches(fromQuery)) {
      void reply.header(
        'set-cookie',
        `${TOKEN_COOKIE}=${encodeURIComponent(fromQuery!)}; Path=/; HttpOnly; SameSite=Strict`,
      );
      return;
    }
    throw unauthorized('this server asks for a token: none or a wrong one was sent', {
      hint: 'Send the header "Authorization: Bearer TOKEN", or open the page once as http://HOST:PORT/?token=TOKEN (clipstream serve --token or CLIPSTREAM_TOKEN).',
    });
  });
}

const digest = (s: string) => createHash('sha256').update(s).digest();

function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

function queryToken(url: string): string | undefined {
  const q = url.indexOf('?');
  return q < 0 ? undefined : (new URLSearchParams(url.slice(q + 1)).get('token') ?? undefined);
}

/**
 * The page's API changes things (POST /api/streams starts downloads, /api/plan takes CPU) and a browser lets any
 * web site POST to 127.0.0.1 (a text/plain body needs no preflight, and bodies are JSON whatever their type): a POST
 * to /api/ whose Origin is not this server is refused. Only /api/: clip-front, hosted elsewhere, calls clip back's
 * routes across origins by design; scripts send no Origin.
 */
export function registerOriginCheck(app: FastifyInstance): void {
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const origin = req.headers.origin;
    if (req.method === 'GET' || req.method === 'HEAD' || origin === undefined || !req.url.startsWith('/api/')) return;
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host !== req.headers.host)
      throw forbidden(`a request to ${req.url.split('?')[0]} from another site (${origin}) is refused`, {
        hint: 'Use the page this server serves, or send the request without an Origin header (a script).',
      });
  });
}

/**
 * Without a token the server listens on loopback only, and its one protection is that only this machine reaches it.
 * DNS rebinding gets around that: a web site the user opens points its own name at 127.0.0.1 and its scripts then
 * read this server's API as same-origin. Their requests carry the site's name as Host, so without a token a Host
 * other than a loopback name or address is refused. Scripts and the page send `127.0.0.1:PORT` or `localhost:PORT`.
 */
export function registerHostCheck(app: FastifyInstance): void {
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const host = req.headers.host;
    if (host === undefined || isLoopbackHost(host)) return;
    throw forbidden(`a request for the host name "${host.slice(0, 100)}" is refused by a server without a token`, {
      hint: 'Address it as 127.0.0.1, localhost or [::1], or start clipstream serve with --token to reach it by another name.',
    });
  });
}

/**
 * `localhost`, `*.localhost`, 127.0.0.0/8 or ::1: a Host header (with or without a port, [::1] bracketed) or a
 * --host value (::1 bare). The one test of "only this machine" for the token check and the Host check.
 */
export function isLoopbackHost(host: string): boolean {
  const lower = host.toLowerCase();
  if (lower === '::1') return true;
  const name = lower.replace(/:\d+$/, '').replace(/\.$/, '');
  return (
    name === 'localhost' ||
    name.endsWith('.localhost') ||
    name === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)
  );
}
