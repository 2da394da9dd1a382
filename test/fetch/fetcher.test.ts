import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import {
  createFetcher,
  isPrivateAddress,
  OPTED_OUT_MESSAGE,
  type FetchOptions,
  type Fetcher,
  type FetcherInternals,
} from '../../src/fetch/index.js';
import type { FetchOutcome } from '../../src/core/types.js';
import { startImageServer, type ImageServer } from '../helpers/image-server.js';

let server: ImageServer;
const fetchers: Fetcher[] = [];

beforeAll(async () => {
  server = await startImageServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.resetStats());
afterEach(async () => {
  await Promise.all(fetchers.splice(0).map((f) => f.close()));
});

/** A fetcher for the loopback test server (private networks allowed unless said otherwise). */
function fetcher(o: Partial<FetchOptions> = {}): Fetcher {
  const f = createFetcher({ allowPrivateNetworks: true, timeoutMs: 3000, ...o });
  fetchers.push(f);
  return f;
}

async function timed(p: Promise<FetchOutcome>): Promise<[FetchOutcome, number]> {
  const start = performance.now();
  const out = await p;
  return [out, performance.now() - start];
}

function failure(out: FetchOutcome) {
  if (out.ok) throw new Error(`expected a failure, got ${out.status} ${out.url}`);
  return out;
}

describe('success', () => {
  it('fetches an image with its bytes, final URL, status and content type', async () => {
    const out = await fetcher().fetch(`${server.url}/img/40x30.png?color=00ff00`);
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(out).toMatchObject({
      status: 200,
      contentType: 'image/png',
      attempts: 1,
      url: `${server.url}/img/40x30.png?color=00ff00`,
    });
    const meta = await sharp(out.bytes).metadata();
    expect([meta.width, meta.height, meta.format]).toEqual([40, 30, 'png']);
  });

  it('fetches HTML fine: judging content is the image brick’s job', async () => {
    const out = await fetcher().fetch(`${server.url}/html`);
    expect(out.ok && out.contentType).toMatch(/^text\/html/);
  });

  it('reuses keep-alive connections and shares them between requests', async () => {
    const f = fetcher();
    const outs = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        f.fetch(`${server.url}/img/8x8.jpg?color=0000${(i % 10).toString().padStart(2, '0')}`),
      ),
    );
    expect(outs.every((o) => o.ok)).toBe(true);
  });
});

describe('HTTP errors and retries', () => {
  it('does not retry a 404', async () => {
    const out = failure(await fetcher({ retries: 3 }).fetch(`${server.url}/status/404`));
    expect(out).toMatchObject({ reason: 'http_404', status: 404, attempts: 1, message: 'HTTP Error 404: Not Found' });
    expect(server.requests.get('/status/404')).toBe(1);
  });

  it('gives http_500 after retries run out', async () => {
    const out = failure(await fetcher({ retries: 1 }).fetch(`${server.url}/status/500`));
    expect(out).toMatchObject({ reason: 'http_500', status: 500, attempts: 2 });
    expect(server.requests.get('/status/500')).toBe(2);
  });

  it('retries a 503 until it succeeds', async () => {
    const out = await fetcher({ retries: 3 }).fetch(`${server.url}/flaky/a?fail=2`);
    expect(out).toMatchObject({ ok: true, attempts: 3 });
    expect(server.requests.get('/flaky/a')).toBe(3);
  });

  it('does not retry by default (img2dataset’s retries=0)', async () => {
    const out = failure(await fetcher().fetch(`${server.url}/flaky/b?fail=1`));
    expect(out).toMatchObject({ reason: 'http_503', attempts: 1 });
  });

  it('honours 429 Retry-After and then succeeds', async () => {
    const [out, ms] = await timed(fetcher({ retries: 2 }).fetch(`${server.url}/ratelimit/c?fail=1&retry_after=1`));
    expect(out).toMatchObject({ ok: true, attempts: 2 });
    expect(ms).toBeGreaterThanOrEqual(1000);
    expect(ms).toBeLessThan(4000);
  });

  it('is rate_limited when 429s outlast the retries', async () => {
    const out = failure(await fetcher({ retries: 1 }).fetch(`${server.url}/ratelimit/d?fail=5&retry_after=0.2`));
    expect(out).toMatchObject({ reason: 'rate_limited', status: 429, attempts: 2 });
    expect(server.requests.get('/ratelimit/d')).toBe(2);
  });

  it('is rate_limited at once when Retry-After exceeds the cap', async () => {
    const [out, ms] = await timed(
      fetcher({ retries: 3, maxRetryAfterMs: 5000 }).fetch(`${server.url}/ratelimit/e?fail=1&retry_after=3600`),
    );
    expect(failure(out)).toMatchObject({ reason: 'rate_limited', attempts: 1 });
    expect(failure(out).message).toMatch(/Retry-After 3600 s exceeds the 5 s cap/);
    expect(ms).toBeLessThan(1500); // at once: not the 5 s cap
  });

  it('cools the host down after a 429: concurrent requests to it wait instead of piling on', async () => {
    const f = fetcher({ retries: 1 });
    const limited = f.fetch(`${server.url}/ratelimit/f?fail=1&retry_after=1`);
    // the 429 has been answered and heard: the host is cooling down (polled: a loaded machine is slow to get there)
    while (!server.requests.get('/ratelimit/f')) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 250));
    const [other, ms] = await timed(f.fetch(`${server.url}/img/10x10.jpg`));
    expect(other.ok).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(600); // waited out the rest of the 1 s cool-down
    expect((await limited).ok).toBe(true);
    expect(server.requests.get('/ratelimit/f')).toBe(2);
  });
});

describe('deadline: every fault costs at most its timeout', () => {
  it.each([['/endless'], ['/slow-body?ms=60000'], ['/slow-first-byte?ms=60000']])(
    '%s → timeout within the deadline',
    async (path) => {
      const [out, ms] = await timed(fetcher({ timeoutMs: 500 }).fetch(`${server.url}${path}`));
      expect(failure(out).reason).toBe('timeout');
      expect(ms).toBeGreaterThanOrEqual(450);
      expect(ms).toBeLessThan(3000); // not the 60 s the fault lasts (slack for a loaded machine)
    },
  );

  it('retries a timeout, each attempt with its own deadline', async () => {
    const [out, ms] = await timed(
      fetcher({ timeoutMs: 300, retries: 1 }).fetch(`${server.url}/slow-first-byte?ms=60000`),
    );
    expect(failure(out)).toMatchObject({ reason: 'timeout', attempts: 2 });
    expect(ms).toBeLessThan(3000);
  });

  it('succeeds when the slow first byte is within the deadline', async () => {
    const out = await fetcher({ timeoutMs: 2000 }).fetch(`${server.url}/slow-first-byte?ms=200`);
    expect(out.ok).toBe(true);
  });

  it('a caller abort ends the fetch at once with reason aborted', async () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 200);
    const [out, ms] = await timed(fetcher({ timeoutMs: 5000 }).fetch(`${server.url}/endless`, ctl.signal));
    expect(failure(out).reason).toBe('aborted');
    expect(ms).toBeLessThan(1000);
  });
});

describe('byte cap', () => {
  it('refuses a big content-length before reading the body', async () => {
    const [out, ms] = await timed(fetcher({ maxBytes: 1024 * 1024 }).fetch(`${server.url}/huge?bytes=${1024 ** 3}`));
    expect(failure(out).reason).toBe('too_large');
    expect(failure(out).message).toMatch(/content-length/);
    expect(ms).toBeLessThan(1000);
  });

  it('stops a streamed body without content-length at the cap', async () => {
    const [out, ms] = await timed(
      fetcher({ maxBytes: 1024 * 1024 }).fetch(`${server.url}/huge?bytes=${1024 ** 3}&nolength=1`),
    );
    expect(failure(out).reason).toBe('too_large');
    expect(ms).toBeLessThan(1000);
  });

  it('stops an endless body at the cap', async () => {
    const out = await fetcher({ maxBytes: 256 * 1024, timeoutMs: 5000 }).fetch(`${server.url}/endless`);
    expect(failure(out).reason).toBe('too_large');
  });

  it('accepts a body exactly at the cap', async () => {
    const out = await fetcher({ maxBytes: 100_000 }).fetch(`${server.url}/huge?bytes=100000&nolength=1`);
    expect(out.ok && out.bytes.length).toBe(100_000);
  });
});

describe('redirects', () => {
  it('follows a chain within the limit and reports the final URL', async () => {
    const out = await fetcher({ maxRedirects: 5 }).fetch(`${server.url}/redirect/5`);
    expect(out).toMatchObject({ ok: true, url: `${server.url}/img/32x32.jpg`, attempts: 1 });
    expect(server.requests.get('/redirect/1')).toBe(1);
  });

  it('fails a chain longer than the limit', async () => {
    const out = failure(await fetcher({ maxRedirects: 3 }).fetch(`${server.url}/redirect/4`));
    expect(out.reason).toBe('too_many_redirects');
    expect(server.requests.get('/img/32x32.jpg')).toBeUndefined();
  });

  it('fails a loop', async () => {
    const out = failure(await fetcher({ retries: 2 }).fetch(`${server.url}/redirect-loop`));
    expect(out).toMatchObject({ reason: 'too_many_redirects', attempts: 1 });
    expect(server.requests.get('/redirect-loop')).toBe(6);
  });

  it('refuses a redirect to a non-http scheme', async () => {
    const out = failure(
      await fetcher().fetch(`${server.url}/redirect/1?to=${encodeURIComponent('ftp://example.com/a.jpg')}`),
    );
    expect(out.reason).toBe('invalid_url');
  });
});

describe('X-Robots-Tag opt-out', () => {
  const robots = (...tags: string[]) =>
    `${server.url}/robots?${tags.map((t) => `tag=${encodeURIComponent(t)}`).join('&')}`;

  it.each([
    [['noai'], undefined, 'opted_out'],
    [['noimageindex'], undefined, 'opted_out'],
    [['otherbot: noai'], undefined, 'ok'],
    [['mytoken: noai'], 'mytoken', 'opted_out'],
    [['otherbot: noai'], 'mytoken', 'ok'],
    [['nofollow'], undefined, 'ok'],
    [['nofollow', 'noai'], undefined, 'opted_out'],
    [['otherbot: nofollow', 'noai'], undefined, 'opted_out'], // separate header lines stay separate
    [['otherbot: noai', 'nofollow'], undefined, 'ok'],
  ] as const)('%j (token %s) → %s', async (tags, token, expected) => {
    const out = await fetcher({ userAgentToken: token }).fetch(robots(...tags));
    if (expected === 'ok') expect(out.ok).toBe(true);
    else
      expect(failure(out)).toMatchObject({ reason: 'opted_out', message: OPTED_OUT_MESSAGE, status: 200, attempts: 1 });
  });

  it('is disabled with an empty directive list', async () => {
    const out = await fetcher({ disallowedHeaderDirectives: [] }).fetch(robots('noai'));
    expect(out.ok).toBe(true);
  });

  it('is checked on the final response of a redirect chain', async () => {
    const out = await fetcher().fetch(`${server.url}/redirect/2?to=${encodeURIComponent('/robots?tag=noai')}`);
    expect(failure(out).reason).toBe('opted_out');
  });
});

describe('SSRF guard', () => {
  const port = () => new URL(server.url).port;

  it.each([
    () => `${server.url}/img/10x10.jpg`,
    () => `http://localhost:${port()}/img/10x10.jpg`,
    () => `http://[::1]:${port()}/img/10x10.jpg`,
    () => `http://[::ffff:127.0.0.1]:${port()}/img/10x10.jpg`,
    () => `http://2130706433:${port()}/img/10x10.jpg`,
    () => `http://0.0.0.0:${port()}/img/10x10.jpg`,
    () => `http://[2002:7f00:1::]:${port()}/img/10x10.jpg`, // 6to4 of 127.0.0.1
    () => `http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:${port()}/img/10x10.jpg`, // Teredo, client 127.0.0.1
  ])('refuses loopback (%#) without sending a request', async (url) => {
    const out = failure(await createGuarded().fetch(url()));
    expect(out.reason).toBe('private_address');
    expect(server.totalRequests()).toBe(0);
  });

  // Only loopback exists here, so these tests swap the address classifier to let the first hop through, then
  // show the guard refusing the next hop: an IP-literal hop (checked before dialling) and a hostname hop whose
  // DNS answer has "become" private (DNS rebinding: checked at the lookup of every new connection).
  it('refuses a redirect hop to a private IP literal', async () => {
    const f = createGuarded({ isPrivateAddress: (ip) => ip !== '127.0.0.1' && isPrivateAddress(ip) });
    const to = `http://[::1]:${port()}/img/10x10.jpg`;
    const out = failure(await f.fetch(`${server.url}/redirect/1?to=${encodeURIComponent(to)}`));
    expect(out.reason).toBe('private_address');
    expect(server.requests.get('/redirect/1')).toBe(1);
  });

  it('refuses a redirect hop to a hostname that resolves to a private address (rebinding)', async () => {
    const f = createGuarded({ isPrivateAddress: (ip) => server.requests.has('/redirect/1') && isPrivateAddress(ip) });
    const to = `http://localhost:${port()}/img/10x10.jpg`;
    const out = failure(await f.fetch(`${server.url}/redirect/1?to=${encodeURIComponent(to)}`));
    expect(out.reason).toBe('private_address');
    expect(out.message).toMatch(/localhost/);
    expect(server.requests.get('/redirect/1')).toBe(1);
    expect(server.requests.get('/img/10x10.jpg')).toBeUndefined();
  });

  it('allows loopback when allowPrivateNetworks is set', async () => {
    const out = await fetcher({ allowPrivateNetworks: true }).fetch(`http://localhost:${port()}/img/10x10.jpg`);
    expect(out.ok).toBe(true);
  });

  function createGuarded(internals: FetcherInternals = {}): Fetcher {
    const f = createFetcher({ allowPrivateNetworks: false, timeoutMs: 2000, retries: 2 }, internals);
    fetchers.push(f);
    return f;
  }
});

describe('invalid input and network errors', () => {
  it.each(['not a url', 'ftp://example.com/a.jpg', 'file:///etc/passwd', 'javascript:alert(1)', 'http://', ''])(
    '%j → invalid_url',
    async (url) => {
      const out = failure(await fetcher().fetch(url));
      expect(out).toMatchObject({ reason: 'invalid_url', attempts: 0 });
    },
  );

  it('gives dns_error for a host that cannot exist (.invalid, RFC 6761)', async () => {
    const [out, ms] = await timed(
      fetcher({ allowPrivateNetworks: false, timeoutMs: 5000 }).fetch('http://no-such-host.invalid/a.jpg'),
    );
    expect(failure(out)).toMatchObject({ reason: 'dns_error', attempts: 1 });
    expect(ms).toBeLessThan(5500);
  });

  it('retries a resolver that did not answer (EAI_AGAIN), never a host that does not exist (ENOTFOUND)', async () => {
    // No resolver here fails "temporarily" on demand, so the lookup is replaced: the first call for each host
    // fails with that host's code, later calls answer 127.0.0.1.
    const calls = new Map<string, number>();
    const dnsLookup: FetcherInternals['dnsLookup'] = (hostname, _options, callback) => {
      const n = (calls.get(hostname) ?? 0) + 1;
      calls.set(hostname, n);
      const code = hostname.startsWith('busy') ? 'EAI_AGAIN' : 'ENOTFOUND';
      if (n === 1 || code === 'ENOTFOUND')
        return setImmediate(() => callback(Object.assign(new Error(`getaddrinfo ${code} ${hostname}`), { code }), []));
      setImmediate(() => callback(null, [{ address: '127.0.0.1', family: 4 }]));
    };
    const f = createFetcher({ allowPrivateNetworks: true, timeoutMs: 3000, retries: 2 }, { dnsLookup });
    fetchers.push(f);
    const port = new URL(server.url).port;
    const busy = await f.fetch(`http://busy.example:${port}/img/8x8.jpg`);
    expect(busy).toMatchObject({ ok: true, attempts: 2 });
    const gone = failure(await f.fetch(`http://gone.example:${port}/img/8x8.jpg`));
    expect(gone).toMatchObject({ reason: 'dns_error', attempts: 1 });
    expect(gone.message).toBe('DNS lookup failed for gone.example (ENOTFOUND)');
    expect(calls.get('gone.example')).toBe(1);
  });

  it('gives tls_error for a certificate nobody vouches for', async () => {
    const tls = createHttpsServer({ key: TEST_KEY, cert: TEST_CERT }, (_, res) => res.end('secret'));
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = tls.address() as AddressInfo;
      const out = failure(await fetcher({ retries: 2 }).fetch(`https://127.0.0.1:${port}/a.jpg`));
      expect(out).toMatchObject({ reason: 'tls_error', attempts: 1 });
      expect(out.message).toMatch(/SELF_SIGNED/);
    } finally {
      tls.closeAllConnections();
      await new Promise((resolve) => tls.close(resolve));
    }
  });

  it('gives connection_error for a refused connection', async () => {
    const closed = await startImageServer();
    const url = `${closed.url}/img/10x10.jpg`;
    await closed.close();
    const out = failure(await fetcher({ retries: 1 }).fetch(url));
    expect(out).toMatchObject({ reason: 'connection_error', attempts: 2 });
    expect(out.message).toMatch(/ECONNREFUSED/);
  });
});

describe('concurrency limits', () => {
  it('never has more than perHostConcurrency requests open on one host', async () => {
    const f = fetcher({ perHostConcurrency: 2, concurrency: 64 });
    const [outs, ms] = await timedAll(
      Array.from({ length: 10 }, () => f.fetch(`${server.url}/slow-first-byte?ms=200`)),
    );
    expect(outs.every((o) => o.ok)).toBe(true);
    expect(server.peakInFlight).toBe(2);
    expect(ms).toBeGreaterThanOrEqual(5 * 200 - 50);
  });

  it('never has more than concurrency requests open in total', async () => {
    const f = fetcher({ perHostConcurrency: 16, concurrency: 3 });
    const outs = await Promise.all(Array.from({ length: 9 }, () => f.fetch(`${server.url}/slow-first-byte?ms=100`)));
    expect(outs.every((o) => o.ok)).toBe(true);
    expect(server.peakInFlight).toBe(3);
  });

  async function timedAll(ps: Promise<FetchOutcome>[]): Promise<[FetchOutcome[], number]> {
    const start = performance.now();
    const outs = await Promise.all(ps);
    return [outs, performance.now() - start];
  }
});

/** A self-signed test-only certificate for 127.0.0.1/localhost (generated once, valid for 100 years). */
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgG0DLH6i4SWc6UGu+
OqMKaAPUkb+rmWZYZPYDGFKtHXehRANCAASZNzBktgIAmsfZlRLpzROsZStbaAtv
JQhEvILBM/1wXfamY0CR0/zbiSxp3+1hoTOsy14iBhv1WoreHS4h9Wv8
-----END PRIVATE KEY-----`;
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBpzCCAU2gAwIBAgIUJlPBtR16uC6PzQyeFwYt8aN+YAIwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPY2xpcHN0cmVhbS10ZXN0MCAXDTI2MTEyNTAyNDQzOVoYDzIx
MjYxMTAxMDI0NDM5WjAaMRgwFgYDVQQDDA9jbGlwc3RyZWFtLXRlc3QwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAASZNzBktgIAmsfZlRLpzROsZStbaAtvJQhEvILB
M/1wXfamY0CR0/zbiSxp3+1hoTOsy14iBhv1WoreHS4h9Wv8o28wbTAdBgNVHQ4E
FgQUdaVYRf//gpiOh/SpXdUuwn2ELUwwHwYDVR0jBBgwFoAUdaVYRf//gpiOh/Sp
XdUuwn2ELUwwDwYDVR0TAQH/BAUwAwEB/zAaBgNVHREEEzARhwR/AAABgglsb2Nh
bGhvc3QwCgYIKoZIzj0EAwIDSAAwRQIhAPKRImkDOFrg5ECZF/MWwQN+WxYJDEXZ
IjROpgyLprVRAiBHQzLOtg1+ZIU/Jx9bdNeD5nk4XYGn7CIVvmQtSsqtIA==
-----END CERTIFICATE-----`;
