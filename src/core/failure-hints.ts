/**
 * What a user can do when most downloads fail for one reason: the one table behind `download`'s summary, a
 * stream's exhaustion error and the served stream's error. `style` says how the user sets options there: CLI flags
 * (`download`) or spec fields (streams).
 */
export type OptionStyle = 'cli' | 'spec';

const option = (style: OptionStyle, flag: string, field: string) => (style === 'cli' ? flag : field);

const HINTS: Record<string, (style: OptionStyle) => string> = {
  private_address: (s) =>
    `the urls resolve to private, loopback or link-local addresses, which are refused by default; if you trust them (a local server, a test), ${s === 'cli' ? 'add --allow-private-networks' : 'set fetch: {allow_private_networks: true} in the spec'}`,
  invalid_url: (s) =>
    s === 'cli'
      ? 'the url column holds no http(s) urls: check --input-format and --url-col'
      : "the index's url column holds no http(s) urls",
  dns_error: () => 'host names do not resolve: check the network and the DNS resolver of this machine',
  connection_error: () => 'connections fail: check the network (a proxy? a firewall?)',
  timeout: (s) => `requests time out: check the network, or raise ${option(s, '--timeout', 'fetch.timeout')}`,
  tls_error: () => 'TLS handshakes fail: check the system clock and certificates',
  rate_limited: (s) => `the hosts answer 429: lower ${option(s, '--per-host-concurrency', 'fetch.per_host')}`,
  opted_out: (s) =>
    `the servers opt these images out with X-Robots-Tag (see ${option(s, '--disallowed-header-directives', 'fetch.disallowed_header_directives')})`,
  not_an_image: () => 'the urls return pages, not images: check that the url column points at image files',
  too_large: (s) => `the images are larger than ${option(s, '--max-bytes', 'fetch.max_bytes')}`,
  http: (s) =>
    s === 'cli'
      ? 'the servers answer with errors: see the error_message column of the shard parquet files'
      : 'the links are dead or the servers answer with errors',
};

type Reasons = Map<string, number> | Record<string, number>;

const byCount = (reasons: Reasons) =>
  (reasons instanceof Map ? [...reasons] : Object.entries(reasons)).sort((a, b) => b[1] - a[1]);

/** Reasons by count, most frequent first, as `reason count` pairs: `private_address 81, http_404 3`. */
export function formatReasons(reasons: Reasons, most = 5): string {
  return byCount(reasons)
    .slice(0, most)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
}

/** What to do about one failure reason (`http_NNN` share one entry), when there is something to say. */
export function hintForReason(reason: string, style: OptionStyle): string | undefined {
  return (HINTS[reason] ?? (reason.startsWith('http_') ? HINTS.http : undefined))?.(style);
}

/** The hint for the most frequent reason, when there is one. */
export function hintForReasons(reasons: Reasons, style: OptionStyle): string | undefined {
  const top = byCount(reasons)[0]?.[0];
  return top === undefined ? undefined : hintForReason(top, style);
}
