import { invalidOption } from '../core/errors.js';
import { DEFAULT_DISALLOWED_DIRECTIVES } from './robots.js';

export interface FetchOptions {
  /** Total deadline per attempt: connect + headers + whole body (and every redirect hop), in ms. */
  timeoutMs: number;
  /** Extra attempts, only for retryable failures (timeouts, connection errors, 5xx, 429). */
  retries: number;
  /** Body byte cap → 'too_large' (content-length checked first, streamed bytes counted). */
  maxBytes: number;
  /** Redirects followed per attempt → 'too_many_redirects' beyond. */
  maxRedirects: number;
  /** Requests in flight for this fetcher (img2dataset's thread_count). */
  concurrency: number;
  /** Requests (and connections) in flight per host. */
  perHostConcurrency: number;
  /** Appended to our user agent, and the UA token X-Robots-Tag directives may be scoped to. */
  userAgentToken?: string;
  /** X-Robots-Tag directives that opt an image out → 'opted_out'. [] disables the check. */
  disallowedHeaderDirectives: string[];
  /** Allow loopback/private/link-local/... addresses (tests); otherwise → 'private_address'. */
  allowPrivateNetworks: boolean;
  /** Longest Retry-After honoured; a longer one ends the fetch with 'rate_limited'. */
  maxRetryAfterMs?: number;
}

export const defaultFetchOptions: FetchOptions = {
  timeoutMs: 10_000,
  retries: 0,
  maxBytes: 50 * 1024 * 1024,
  maxRedirects: 5,
  concurrency: 256,
  perHostConcurrency: 16,
  userAgentToken: undefined,
  disallowedHeaderDirectives: [...DEFAULT_DISALLOWED_DIRECTIVES],
  allowPrivateNetworks: false,
  maxRetryAfterMs: 60_000,
};

/** Fills defaults (undefined means "use the default") and checks the numbers once, at the boundary. */
export function resolveFetchOptions(
  partial: Partial<FetchOptions>,
): Required<Omit<FetchOptions, 'userAgentToken'>> & Pick<FetchOptions, 'userAgentToken'> {
  const defined = Object.fromEntries(
    Object.entries(partial).filter(([, v]) => v !== undefined),
  ) as Partial<FetchOptions>;
  const o = { ...defaultFetchOptions, ...defined, maxRetryAfterMs: defined.maxRetryAfterMs ?? 60_000 };
  const check = (name: keyof FetchOptions, value: number, min: number, integer = true) => {
    if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
      throw invalidOption(
        `Expected ${integer ? 'an integer' : 'a number'} >= ${min} for ${name} but received ${value}`,
      );
    }
  };
  check('timeoutMs', o.timeoutMs, 1, false);
  check('retries', o.retries, 0);
  check('maxBytes', o.maxBytes, 0);
  check('maxRedirects', o.maxRedirects, 0);
  check('concurrency', o.concurrency, 1);
  check('perHostConcurrency', o.perHostConcurrency, 1);
  check('maxRetryAfterMs', o.maxRetryAfterMs, 0, false);
  return o;
}
