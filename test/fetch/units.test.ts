import { describe, expect, it } from 'vitest';
import { isClipstreamError } from '../../src/core/errors.js';
import { classifyError } from '../../src/fetch/classify.js';
import {
  backoffMs,
  createFetcher,
  isDisallowedByRobotsTag,
  isPrivateAddress,
  isRetryable,
  parseRetryAfter,
  userAgent,
} from '../../src/fetch/index.js';

const DEFAULT = ['noai', 'noimageai', 'noindex', 'noimageindex'];

describe('isDisallowedByRobotsTag (img2dataset is_disallowed)', () => {
  it.each([
    [['noai'], undefined, DEFAULT, true],
    [['NoImageAI'], undefined, DEFAULT, true],
    [['nofollow'], undefined, DEFAULT, false],
    [['nofollow, noindex'], undefined, DEFAULT, true],
    [['nofollow', ' noimageindex '], undefined, DEFAULT, true],
    [['otherbot: noai'], undefined, DEFAULT, false],
    [['otherbot: noai'], 'mytoken', DEFAULT, false],
    [['mytoken: noai'], 'mytoken', DEFAULT, true],
    [['MyToken: noai, nofollow'], 'mytoken', DEFAULT, true],
    [['mytoken: nofollow'], 'mytoken', DEFAULT, false],
    [['otherbot: noai', 'nofollow'], 'mytoken', DEFAULT, false],
    [['noai'], undefined, [], false],
    [['noml'], undefined, ['noml'], true],
    [[], undefined, DEFAULT, false],
  ] as const)('%j token=%s → %s', (values, token, disallowed, expected) => {
    expect(isDisallowedByRobotsTag([...values], token, [...disallowed])).toBe(expected);
  });
});

describe('isPrivateAddress', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.255.1.2', true],
    ['10.1.2.3', true],
    ['172.16.0.1', true],
    ['172.31.255.255', true],
    ['172.32.0.1', false],
    ['192.168.1.1', true],
    ['169.254.169.254', true],
    ['100.64.0.1', true],
    ['100.127.255.254', true],
    ['100.128.0.1', false],
    ['0.0.0.0', true],
    ['224.0.0.1', true],
    ['255.255.255.255', true],
    ['8.8.8.8', false],
    ['93.184.216.34', false],
    ['::1', true],
    ['::', true],
    ['[::1]', true],
    ['fe80::1', true],
    ['fe80::1%eth0', true],
    ['fc00::1', true],
    ['fd12:3456:789a::1', true],
    ['ff02::1', true],
    ['2001:db8::1', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:7f00:1', true],
    ['::ffff:10.0.0.1', true],
    ['::ffff:8.8.8.8', false],
    ['::ffff:808:808', false],
    ['64:ff9b::10.0.0.1', true],
    ['64:ff9b::8.8.8.8', false],
    ['::127.0.0.1', true],
    ['::8.8.8.8', false],
    // SIIT translated ::ffff:0:0:0/96
    ['::ffff:0:7f00:1', true],
    ['::ffff:0:808:808', false],
    // 6to4 2002::/16: the IPv4 is groups 1–2 (issue 15: http://[2002:7f00:1::]/ reached 127.0.0.1)
    ['2002:7f00:1::', true],
    ['2002:a00:1:1::1', true],
    ['2002:a9fe:a9fe::', true],
    ['2002:808:808::1', false],
    // Teredo 2001::/32: the client IPv4 is the last 32 bits XOR 0xffffffff; the server IPv4 is groups 2–3
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', true], //   client 127.0.0.1
    ['2001:0:4136:e378:8000:63bf:f5ff:fffe', true], //   client 10.0.0.1
    ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', false], //  client 8.8.8.8, server 65.54.227.120
    ['2001:0:a00:1:8000:63bf:f7f7:f7f7', true], //       server 10.0.0.1
    // NAT64: the well-known prefix carries the IPv4; the local-use /48 is blocked whole
    ['64:ff9b::7f00:1', true],
    ['64:ff9b:1::808:808', true],
    ['64:ff9b:1:ffff::1', true],
    ['2606:4700:4700::1111', false],
    ['2a00:1450:4007:80f::200e', false],
    ['example.com', true],
    ['', true],
  ])('%s → %s', (address, expected) => {
    expect(isPrivateAddress(address)).toBe(expected);
  });
});

describe('userAgent', () => {
  it('is honest and carries the token', () => {
    expect(userAgent()).toBe('clipstream/0.1 (+https://github.com/clipstream/clipstream)');
    expect(userAgent('mytoken')).toBe('clipstream/0.1 (+https://github.com/clipstream/clipstream; mytoken)');
    expect(userAgent('')).toBe(userAgent());
  });
});

describe('retry policy', () => {
  it('retries only timeouts, connection errors, 5xx and 429', () => {
    expect(isRetryable('timeout')).toBe(true);
    expect(isRetryable('connection_error')).toBe(true);
    expect(isRetryable('http_503', 503)).toBe(true);
    expect(isRetryable('http_429', 429)).toBe(true);
    expect(isRetryable('http_404', 404)).toBe(false);
    expect(isRetryable('dns_error')).toBe(false);
    expect(isRetryable('dns_error', undefined, true)).toBe(true); // EAI_AGAIN
    expect(isRetryable('too_large', 200)).toBe(false);
    expect(isRetryable('opted_out', 200)).toBe(false);
  });

  it('backs off exponentially with bounded jitter', () => {
    expect(backoffMs(1, () => 0)).toBe(150);
    expect(backoffMs(1, () => 1)).toBe(250);
    expect(backoffMs(3, () => 0.5)).toBe(800);
    expect(backoffMs(30, () => 1)).toBe(12_500);
  });

  it('parses Retry-After seconds and dates', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(['1.5'])).toBe(1500);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
  });
});

describe('options', () => {
  it('rejects nonsense at the boundary with a message naming the option', () => {
    try {
      createFetcher({ perHostConcurrency: 0 });
      expect.unreachable();
    } catch (err) {
      expect(isClipstreamError(err) && err.code).toBe('INVALID_OPTION');
      expect((err as Error).message).toBe('Expected an integer >= 1 for perHostConcurrency but received 0');
    }
  });
});

describe('classifyError', () => {
  const err = (code: string, message = code) => Object.assign(new Error(message), { code });
  it.each([
    [err('ENOTFOUND'), 'dns_error'],
    [err('EAI_AGAIN'), 'dns_error'],
    [err('CERT_HAS_EXPIRED'), 'tls_error'],
    [err('ERR_TLS_CERT_ALTNAME_INVALID'), 'tls_error'],
    [err('DEPTH_ZERO_SELF_SIGNED_CERT'), 'tls_error'],
    [err('UND_ERR_CONNECT_TIMEOUT'), 'timeout'],
    [new AggregateError([err('ETIMEDOUT'), err('ECONNREFUSED')]), 'timeout'],
    [Object.assign(new Error('fetch failed'), { cause: err('ECONNRESET') }), 'connection_error'],
    [err('ERR_CLIPSTREAM_PRIVATE_ADDRESS'), 'private_address'],
    [err('ECONNREFUSED'), 'connection_error'],
    ['something odd', 'connection_error'],
  ] as const)('%s → %s', (error, reason) => {
    expect(classifyError(error, 'example.com').reason).toBe(reason);
  });

  it('names the host and the code in DNS messages', () => {
    expect(classifyError(err('ENOTFOUND'), 'example.com').message).toBe(
      'DNS lookup failed for example.com (ENOTFOUND)',
    );
  });
});
