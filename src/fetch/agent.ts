/**
 * The one undici Agent a fetcher owns: keep-alive pools (one per origin, at most `perHostConcurrency` connections),
 * HTTP/1.1, a DNS cache, and the SSRF guard at connect time — on the address actually dialled, so every redirect
 * hop and every DNS answer is checked.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { isIP, type LookupFunction, type Socket } from 'node:net';
import { Agent, buildConnector } from 'undici';
import { isPrivateAddress, PrivateAddressError } from './ssrf.js';

export interface AgentOptions {
  timeoutMs: number;
  perHostConcurrency: number;
  allowPrivateNetworks: boolean;
  dns?: DnsCacheOptions;
  /** The address classifier; replaceable only so tests can pretend loopback is public. */
  isPrivate?: (address: string) => boolean;
  /** dns.lookup; replaceable only so tests can make the resolver fail. */
  dnsLookup?: DnsLookup;
}

/** The shape of dns.lookup with `all: true` that the caching lookup calls. */
export type DnsLookup = (
  hostname: string,
  options: { all: true; family: number },
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

export function createAgent(o: AgentOptions): Agent {
  const isPrivate = o.isPrivate ?? isPrivateAddress;
  const lookup = createCachingLookup({
    ...o.dns,
    allowPrivateNetworks: o.allowPrivateNetworks,
    isPrivate,
    dnsLookup: o.dnsLookup,
  });
  const base = buildConnector({ timeout: o.timeoutMs, lookup, allowH2: false });
  return new Agent({
    connections: o.perHostConcurrency,
    pipelining: 1,
    keepAliveTimeout: 4_000,
    headersTimeout: o.timeoutMs,
    bodyTimeout: o.timeoutMs,
    allowH2: false,
    connect: o.allowPrivateNetworks ? base : guardConnector(base, isPrivate),
  });
}

type Connector = ReturnType<typeof buildConnector>;

/** Refuses IP-literal hosts that are private before dialling, and any socket whose peer turned out private. */
function guardConnector(base: Connector, isPrivate: (address: string) => boolean): Connector {
  return (opts, callback) => {
    const host = opts.hostname;
    if (isIP(host) !== 0 && isPrivate(host)) {
      callback(new PrivateAddressError(host, host), null);
      return;
    }
    base(opts, (err, socket) => {
      if (err !== null) return callback(err, null);
      const peer = (socket as Socket).remoteAddress;
      if (peer === undefined || isPrivate(peer)) {
        socket.destroy();
        return callback(new PrivateAddressError(host, peer ?? 'unknown'), null);
      }
      callback(null, socket);
    });
  };
}

export interface DnsCacheOptions {
  /** How long a successful answer is reused. dns.lookup gives no TTL, so this is the TTL. Default 60 s. */
  ttlMs?: number;
  /** How long "no such host" is remembered. Default 10 s. */
  negativeTtlMs?: number;
  /** Most hosts remembered; the oldest are dropped first. Default 10 000. */
  maxEntries?: number;
}

type Answer = { addresses: LookupAddress[]; expires: number } | { error: NodeJS.ErrnoException; expires: number };

/**
 * A `lookup` for net.connect: dns.lookup (the system resolver, like every other program on the machine) behind a
 * small TTL cache that also shares in-flight lookups. Unless private networks are allowed, private answers are
 * dropped; a host with only private answers fails with PrivateAddressError before any connection is made.
 */
export function createCachingLookup(
  o: DnsCacheOptions & {
    allowPrivateNetworks: boolean;
    isPrivate?: (address: string) => boolean;
    dnsLookup?: DnsLookup;
  },
): LookupFunction {
  const isPrivate = o.isPrivate ?? isPrivateAddress;
  const systemLookup: DnsLookup =
    o.dnsLookup ?? ((hostname, options, callback) => dnsLookup(hostname, options, callback));
  const ttlMs = o.ttlMs ?? 60_000;
  const negativeTtlMs = o.negativeTtlMs ?? 10_000;
  const maxEntries = o.maxEntries ?? 10_000;
  const cache = new Map<string, Answer>();
  const pending = new Map<string, Promise<Answer>>();

  const resolve = (hostname: string, family: number): Promise<Answer> => {
    const key = `${family}:${hostname}`;
    const hit = cache.get(key);
    if (hit && hit.expires > Date.now()) return Promise.resolve(hit);
    let inFlight = pending.get(key);
    if (!inFlight) {
      inFlight = new Promise<Answer>((done) => {
        systemLookup(hostname, { all: true, family }, (error, addresses) => {
          const answer: Answer = error
            ? { error, expires: Date.now() + (error.code === 'ENOTFOUND' ? negativeTtlMs : 0) }
            : { addresses, expires: Date.now() + ttlMs };
          pending.delete(key);
          cache.delete(key);
          if (answer.expires > Date.now()) {
            cache.set(key, answer);
            if (cache.size > maxEntries) cache.delete(cache.keys().next().value!);
          }
          done(answer);
        });
      });
      pending.set(key, inFlight);
    }
    return inFlight;
  };

  const lookup = (
    hostname: string,
    options: LookupOneOptions | LookupAllOptions,
    callback: (...args: never[]) => void,
  ) => {
    const cb = callback as unknown as (
      err: NodeJS.ErrnoException | null,
      address: string | LookupAddress[],
      family?: number,
    ) => void;
    void resolve(hostname, options.family === 4 || options.family === 6 ? options.family : 0).then((answer) => {
      if ('error' in answer) return cb(answer.error, options.all ? [] : '');
      const usable = o.allowPrivateNetworks ? answer.addresses : answer.addresses.filter((a) => !isPrivate(a.address));
      if (usable.length === 0) {
        return cb(
          new PrivateAddressError(hostname, answer.addresses[0]?.address ?? 'none') as NodeJS.ErrnoException,
          options.all ? [] : '',
        );
      }
      if (options.all) return cb(null, usable);
      cb(null, usable[0]!.address, usable[0]!.family);
    });
  };
  return lookup as unknown as LookupFunction;
}
