/** HTTP for the hostile web: deadlines, byte caps, classified retries, 429 cool-downs, opt-outs, the SSRF guard. */
export { createFetcher, type Fetcher, type FetcherInternals } from './fetcher.js';
export { defaultFetchOptions, type FetchOptions } from './options.js';
export { userAgent } from './user-agent.js';
export { isDisallowedByRobotsTag, DEFAULT_DISALLOWED_DIRECTIVES, OPTED_OUT_MESSAGE } from './robots.js';
export { isPrivateAddress, PrivateAddressError } from './ssrf.js';
export { backoffMs, parseRetryAfter, isRetryable } from './retry.js';
