import { lookup as dnsLookup } from 'node:dns';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createCachingLookup } from '../../src/fetch/agent.js';
import { HostLimiter, sleep } from '../../src/fetch/limits.js';

describe('HostLimiter', () => {
  it('limits each host separately and forgets idle hosts', async () => {
    const hosts = new HostLimiter(2);
    let active = 0;
    let peak = 0;
    const work = async (host: string) => {
      const release = await hosts.acquire(host);
      active++;
      peak = Math.max(peak, active);
      await sleep(20);
      active--;
      release();
    };
    await Promise.all([...Array.from({ length: 6 }, () => work('a')), ...Array.from({ length: 6 }, () => work('b'))]);
    expect(peak).toBe(4);
    expect(hosts.size).toBe(0);
  });

  it('makes requests wait out a cooldown, then forgets the host', async () => {
    const hosts = new HostLimiter(4);
    hosts.cooldown('a', 150);
    hosts.cooldown('a', 50); // never shortens
    const start = performance.now();
    (await hosts.acquire('a'))();
    expect(performance.now() - start).toBeGreaterThanOrEqual(140);
    (await hosts.acquire('b'))();
    expect(hosts.size).toBe(0);
  });

  it('gives up waiting on abort and frees the host', async () => {
    const hosts = new HostLimiter(1);
    const release = await hosts.acquire('a');
    const ctl = new AbortController();
    const waiting = hosts.acquire('a', ctl.signal);
    ctl.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    release();
    expect(hosts.size).toBe(0);
  });
});

describe('caching lookup', () => {
  const call = (lookup: ReturnType<typeof createCachingLookup>, host: string, all: boolean) =>
    new Promise<{ err: NodeJS.ErrnoException | null; result: unknown }>((resolve) => {
      (
        lookup as unknown as (h: string, o: object, cb: (err: NodeJS.ErrnoException | null, r: unknown) => void) => void
      )(host, { all }, (err, result) => resolve({ err, result }));
    });

  it('resolves like dns.lookup, both calling conventions', async () => {
    const lookup = createCachingLookup({ allowPrivateNetworks: true });
    const expected = await promisify(dnsLookup)('localhost', { all: true });
    expect((await call(lookup, 'localhost', true)).result).toEqual(expected);
    expect((await call(lookup, 'localhost', false)).result).toBe(expected[0]!.address);
  });

  it('refuses a host whose every address is private', async () => {
    const lookup = createCachingLookup({ allowPrivateNetworks: false });
    const { err } = await call(lookup, 'localhost', true);
    expect(err?.code).toBe('ERR_CLIPSTREAM_PRIVATE_ADDRESS');
  });

  it('keeps only the public answers when private networks are refused', async () => {
    const lookup = createCachingLookup({ allowPrivateNetworks: false, isPrivate: (ip) => ip !== '127.0.0.1' });
    const { err, result } = await call(lookup, 'localhost', true);
    expect(err).toBeNull();
    expect(result).toEqual([{ address: '127.0.0.1', family: 4 }]);
  });
});
