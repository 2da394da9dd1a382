/**
 * What a user can do when most downloads fail for one reason: the one table behind `download`'s summary, a
 * stream's exhaustion error and the served stream's final error. `where` says how the user sets options there.
 */
export type OptionStyle = 'cli' | 'spec';

const HINTS: Record<string, (style: OptionStyle) => string> = {
  private_address: (s) =>
    `the hosts are on private or loopback addresses, which are refused by default: ${s === 'cli' ? 'add --allow-private-networks' : 'set fetch: {allow_private_networks: true} in the spec'} if you trust them`,
  dns_error: () => 'the host names do not resolve: check the urls and this machine\'s DNS',
  connection_error: () => 'the hosts refuse connections or are unreachable from this machine',
  timeout: (s) => `the hosts are slow: raise ${s === 'cli' ? '--timeout' : 'fetch.timeout'}, or lower the concurrency`,
  rate_limited: (s) => `the hosts answer 429: lower ${s === 'cli' ? '--per-host-concurrency' : 'fetch.per_host'}`,
  opted_out: () => 'the images opt out of AI use with X-Robots-Tag',
  http_404: () => 'the links are dead',
  not_an_image: () => 'the urls do not point at images (HTML pages?)',
  too_large: (s) => `the images are larger than ${s === 'cli' ? '--max-bytes' : 'fetch.max_bytes'}`,
};

/** Reasons by count, most frequent first, as `reason count` pairs: `private_address 81, http_404 3`. */
export function formatReasons(reasons: Map<string, number> | Record<string, number>, most = 5): string {
  const entries = reasons instanceof Map ? [...reasons] : Object.entries(reasons);
  return entries
    .sort((a, b) => b[1] - a[1])
    .slice(0, most)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
}

/** The hint for the most frequent reason, when there is one. */
export function hintForReasons(reasons: Map<string, number> | Record<string, number>, style: OptionStyle): string | undefined {
  const entries = reasons instanceof Map ? [...reasons] : Object.entries(reasons);
  const top = entries.sort((a, b) => b[1] - a[1])[0]?.[0];
  return top === undefined ? undefined : HINTS[top]?.(style);
}
