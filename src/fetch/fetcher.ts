/**
 * The fetcher: one URL → one FetchOutcome, never an exception. Layers, outermost first (each a small function):
 *   validate URL → retry loop (backoff, Retry-After, host cooldown) → host slot + global slot →
 *   deadline (one AbortSignal over connect, headers, every redirect hop and the whole body) →
 *   redirects (each hop re-dials through the SSRF-guarded agent) → response checks (status, X-Robots-Tag,
 *   content-length) → capped body read.
 */
import { STATUS_CODES } from 'node:http';
import { isIP } from 'node:net';
import type { Dispatcher } from 'undici';
import { Semaphore } from '../core/async.js';
import type { FailureReason, FetchOutcome } from '../core/types.js';
import { createAgent, type DnsLookup } from './agent.js';
import { classifyError } from './classify.js';
import { acquireAbortable, HostLimiter, sleep } from './limits.js';
import { resolveFetchOptions, type FetchOptions } from './options.js';
import { backoffMs, isRetryable, parseRetryAfter } from './retry.js';
import { headerValues, isDisallowedByRobotsTag, OPTED_OUT_MESSAGE } from './robots.js';
import { isPrivateAddress, PrivateAddressError } from './ssrf.js';
import { userAgent } from './user-agent.js';

export interface Fetcher {
  /** Never throws for anything the network or the server does; failures are `{ ok: false, reason, message }`. */
  fetch(url: string, signal?: AbortSignal): Promise<FetchOutcome>;
  /** Closes the keep-alive connections. The fetcher cannot be used afterwards. */
  close(): Promise<void>;
}

type Failure = Extract<FetchOutcome, { ok: false }>;
/** One attempt's result: an outcome without the attempt count, plus the server's Retry-After and final host. */
type AttemptResult =
  | Omit<Extract<FetchOutcome, { ok: true }>, 'attempts'>
  | (Omit<Failure, 'attempts'> & { retryAfterMs?: number; host?: string; transient?: true });

const ACCEPT = 'image/webp,image/png,image/jpeg,image/*;q=0.8,*/*;q=0.5';
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Seams for tests only; not part of the options users set. */
export interface FetcherInternals {
  /** Replaces the SSRF address classifier (tests pretend 127.0.0.1 is public to follow a redirect off it). */
  isPrivateAddress?: (address: string) => boolean;
  /** Replaces dns.lookup (tests make a resolver fail now and then: EAI_AGAIN cannot be had from a real one here). */
  dnsLookup?: DnsLookup;
}

export function createFetcher(options: Partial<FetchOptions> = {}, internals: FetcherInternals = {}): Fetcher {
  const o = resolveFetchOptions(options);
  const isPrivate = internals.isPrivateAddress ?? isPrivateAddress;
  const agent = createAgent({
    timeoutMs: o.timeoutMs,
    perHostConcurrency: o.perHostConcurrency,
    allowPrivateNetworks: o.allowPrivateNetworks,
    isPrivate,
    dnsLookup: internals.dnsLookup,
  });
  const hosts = new HostLimiter(o.perHostConcurrency);
  const slots = new Semaphore(o.concurrency);
  const headers = { 'user-agent': userAgent(o.userAgentToken), accept: ACCEPT };

  async function fetch(input: string, signal?: AbortSignal): Promise<FetchOutcome> {
    const parsed = parseHttpUrl(input);
    if (!(parsed instanceof URL)) return { ok: false, reason: 'invalid_url', message: parsed, attempts: 0 };
    const host = parsed.hostname;
    if (!o.allowPrivateNetworks && isIP(unbracket(host)) !== 0 && isPrivate(unbracket(host))) {
      return {
        ok: false,
        reason: 'private_address',
        message: new PrivateAddressError(host, unbracket(host)).message,
        attempts: 0,
      };
    }

    for (let attempts = 1; ; attempts++) {
      let r: AttemptResult;
      try {
        const releaseHost = await hosts.acquire(host, signal);
        try {
          const releaseSlot = await acquireAbortable(slots, signal);
          try {
            r = await attempt(parsed, signal);
          } finally {
            releaseSlot();
          }
        } finally {
          releaseHost();
        }
      } catch {
        return aborted(attempts - 1);
      }
      if (r.ok) return { ...r, attempts };
      if (signal?.aborted) return aborted(attempts);

      const { retryAfterMs, host: failedHost, transient, ...failure } = r;
      const status = failure.status;
      if (status === 429 || (status !== undefined && status >= 500 && retryAfterMs !== undefined)) {
        const wait = retryAfterMs ?? backoffMs(attempts);
        hosts.cooldown(failedHost ?? host, Math.min(wait, o.maxRetryAfterMs));
        if (wait > o.maxRetryAfterMs) {
          const why = `${failure.message} (Retry-After ${Math.ceil(wait / 1000)} s exceeds the ${Math.ceil(o.maxRetryAfterMs / 1000)} s cap)`;
          return status === 429
            ? { ...failure, reason: 'rate_limited', message: why, attempts }
            : { ...failure, message: why, attempts };
        }
      }
      if (attempts > o.retries || !isRetryable(failure.reason, status, transient)) {
        return status === 429 ? { ...failure, reason: 'rate_limited', attempts } : { ...failure, attempts };
      }
      try {
        await sleep(retryAfterMs ?? backoffMs(attempts), signal);
      } catch {
        return aborted(attempts);
      }
    }
  }

  /** One attempt under one deadline: every redirect hop, the headers and the whole body. */
  async function attempt(url: URL, callerSignal: AbortSignal | undefined): Promise<AttemptResult> {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new DOMException('deadline', 'TimeoutError')), o.timeoutMs);
    const signal = callerSignal ? AbortSignal.any([callerSignal, deadline.signal]) : deadline.signal;
    let current = url;
    try {
      for (let hop = 0; ; hop++) {
        const res = await agent.request({
          origin: current.origin,
          path: current.pathname + current.search,
          method: 'GET',
          headers,
          signal,
        });
        const location = REDIRECTS.has(res.statusCode) ? headerValues(res.headers.location)[0] : undefined;
        if (location === undefined) return await readResponse(res, current);
        await discard(res.body);
        if (hop >= o.maxRedirects) {
          return {
            ok: false,
            reason: 'too_many_redirects',
            message: `Too many redirects (more than ${o.maxRedirects})`,
            status: res.statusCode,
          };
        }
        const next = parseHttpUrl(location, current);
        if (!(next instanceof URL))
          return {
            ok: false,
            reason: 'invalid_url',
            message: `Redirect to an unusable URL: ${next}`,
            status: res.statusCode,
          };
        current = next;
      }
    } catch (err) {
      if (deadline.signal.aborted)
        return {
          ok: false,
          reason: 'timeout',
          message: `Timed out after ${o.timeoutMs} ms (connect, headers and body)`,
          host: current.hostname,
        };
      if (callerSignal?.aborted) return { ok: false, reason: 'aborted', message: 'Fetch aborted by the caller' };
      return { ok: false, ...classifyError(err, current.hostname), host: current.hostname };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Status, opt-out and size checks on the headers (before any body byte is read), then the capped body read. */
  async function readResponse(res: Dispatcher.ResponseData, url: URL): Promise<AttemptResult> {
    const { statusCode: status, body } = res;
    const fail = (reason: FailureReason, message: string, extra: { retryAfterMs?: number } = {}): AttemptResult => {
      drop(body);
      return { ok: false, reason, message, status, host: url.hostname, ...extra };
    };
    if (status < 200 || status > 299) {
      const retryAfterMs = status === 429 || status >= 500 ? parseRetryAfter(res.headers['retry-after']) : undefined;
      return fail(
        `http_${status}`,
        `HTTP Error ${status}: ${STATUS_CODES[status] ?? 'Unknown'}`,
        retryAfterMs === undefined ? {} : { retryAfterMs },
      );
    }
    if (
      isDisallowedByRobotsTag(headerValues(res.headers['x-robots-tag']), o.userAgentToken, o.disallowedHeaderDirectives)
    ) {
      return fail('opted_out', OPTED_OUT_MESSAGE);
    }
    const length = Number(headerValues(res.headers['content-length'])[0]);
    if (Number.isFinite(length) && length > o.maxBytes) {
      return fail('too_large', `Response too large: content-length ${length} bytes exceeds the ${o.maxBytes}-byte cap`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of body) {
        total += (chunk as Buffer).length;
        if (total > o.maxBytes) return fail('too_large', `Response too large: more than ${o.maxBytes} bytes`);
        chunks.push(chunk as Buffer);
      }
    } finally {
      if (!body.readableEnded) drop(body);
    }
    const contentType = headerValues(res.headers['content-type'])[0] ?? null;
    return { ok: true, bytes: Buffer.concat(chunks, total), url: url.href, status, contentType };
  }

  return {
    fetch,
    close: () => agent.close(),
  };
}

/** A URL with an http(s) scheme, or a message saying why not. */
function parseHttpUrl(input: string, base?: URL): URL | string {
  let url: URL;
  try {
    url = new URL(input, base);
  } catch {
    return `Invalid URL: ${JSON.stringify(input.length > 200 ? `${input.slice(0, 200)}…` : input)}`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return `Unsupported URL scheme ${JSON.stringify(url.protocol)} (only http and https)`;
  if (url.hostname === '') return `Invalid URL: ${JSON.stringify(input)} has no host`;
  return url;
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function aborted(attempts: number): Failure {
  return { ok: false, reason: 'aborted', message: 'Fetch aborted by the caller', attempts };
}

/** Reads away a small body (redirects) so the connection can be reused; gives up on anything big. */
async function discard(body: Dispatcher.ResponseData['body']): Promise<void> {
  try {
    await body.dump({ limit: 64 * 1024 });
  } catch {
    drop(body);
  }
}

/** Destroys a body we will not read. undici then emits an AbortError on it, which nobody needs to hear about. */
function drop(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}
