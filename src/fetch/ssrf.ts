/**
 * SSRF guard: which addresses a fetcher refuses to connect to unless private networks are allowed.
 * Checked on the address actually dialled (after DNS resolution, on every connection: redirects and DNS rebinding
 * are covered) and on IP-literal hosts.
 */
import { BlockList, isIP } from 'node:net';

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], //       "this" network, unspecified
  ['10.0.0.0', 8], //      private
  ['100.64.0.0', 10], //   CGNAT
  ['127.0.0.0', 8], //     loopback
  ['169.254.0.0', 16], //  link-local (cloud metadata lives here)
  ['172.16.0.0', 12], //   private
  ['192.0.0.0', 24], //    IETF protocol assignments
  ['192.0.2.0', 24], //    TEST-NET-1
  ['192.168.0.0', 16], //  private
  ['198.18.0.0', 15], //   benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], //  TEST-NET-3
  ['224.0.0.0', 4], //     multicast
  ['240.0.0.0', 4], //     reserved, broadcast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], //         unspecified
  ['::1', 128], //        loopback
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215): not global, and its IPv4 may sit at several offsets
  ['100::', 64], //       discard
  ['2001:db8::', 32], //  documentation
  ['fc00::', 7], //       unique local
  ['fe80::', 10], //      link-local
  ['fec0::', 10], //      site-local (deprecated)
  ['ff00::', 8], //       multicast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

export const PRIVATE_ADDRESS_CODE = 'ERR_CLIPSTREAM_PRIVATE_ADDRESS';

/** The error our connector and lookup raise; the fetcher maps its code to the `private_address` reason. */
export class PrivateAddressError extends Error {
  readonly code = PRIVATE_ADDRESS_CODE;
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(
      host === address
        ? `Refusing to connect to private address ${address}`
        : `Refusing to connect to ${host}: it resolves to private address ${address}`,
    );
    this.name = 'PrivateAddressError';
  }
}

/**
 * True for loopback, private, link-local, unique-local, unspecified, CGNAT, multicast and reserved addresses, v4
 * and v6. An IPv6 address that carries an IPv4 one (see `embeddedIpv4s`) is classed by the IPv4 rules too: a
 * gateway would deliver it there. Anything that is not an IP address at all is treated as private (refuse what we
 * cannot classify).
 */
export function isPrivateAddress(address: string): boolean {
  const ip = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = isIP(ip);
  if (family === 4) return blocked.check(ip, 'ipv4');
  if (family !== 6) return true;
  const groups = expandIpv6(ip);
  if (groups === undefined) return true;
  const embedded = embeddedIpv4s(groups);
  if (embedded.some((v4) => blocked.check(v4, 'ipv4'))) return true;
  // An address that is only an IPv4 one in IPv6 form (mapped, compatible, NAT64) is what its IPv4 is.
  if (embedded.length > 0 && !isTunnel(groups)) return false;
  return blocked.check(ip, 'ipv6');
}

/** The 8 16-bit groups of a valid IPv6 address (zone id dropped, dotted v4 tail converted). */
function expandIpv6(ip: string): number[] | undefined {
  let s = ip.split('%')[0]!.toLowerCase();
  const dotted = s.match(/^(.*:)(\d+\.\d+\.\d+\.\d+)$/);
  if (dotted) {
    const [a, b, c, d] = dotted[2]!.split('.').map(Number) as [number, number, number, number];
    s = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const part = (x: string) => (x === '' ? [] : x.split(':').map((g) => parseInt(g, 16)));
  const left = part(head);
  const right = tail === undefined ? [] : part(tail);
  const fill = 8 - left.length - right.length;
  if (fill < 0 || (tail === undefined && fill !== 0)) return undefined;
  const groups = [...left, ...new Array<number>(fill).fill(0), ...right];
  return groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

const dottedQuad = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;

/** 6to4 and Teredo: tunnels whose IPv6 prefix is public; their other addresses are classed as IPv6 too. */
function isTunnel(g: number[]): boolean {
  return g[0] === 0x2002 || (g[0] === 0x2001 && g[1] === 0);
}

/**
 * The IPv4 addresses an IPv6 address carries, for every range that embeds one:
 * `::ffff:0:0/96` (mapped), `::ffff:0:0:0/96` (SIIT translated), `::/96` (compatible, deprecated; not `::` or `::1`),
 * `64:ff9b::/96` (NAT64, RFC 6052), `2002::/16` (6to4: the IPv4 is groups 1–2), `2001::/32` (Teredo: the client's
 * IPv4 is the last 32 bits XOR 0xffffffff; the server's is groups 2–3, also checked). The local-use NAT64 range
 * `64:ff9b:1::/48` may place the IPv4 at several offsets (RFC 8215): it is blocked whole instead.
 */
function embeddedIpv4s(g: number[]): string[] {
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  const [hi, lo] = [g[6]!, g[7]!];
  const mapped = zeros(0, 5) && g[5] === 0xffff; //                        ::ffff:a.b.c.d
  const translated = zeros(0, 4) && g[4] === 0xffff && g[5] === 0; //     ::ffff:0:a.b.c.d
  const compatible = zeros(0, 6) && (hi !== 0 || lo > 1); //              ::a.b.c.d (deprecated), not :: or ::1
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6); //       64:ff9b::a.b.c.d
  if (mapped || translated || compatible || nat64) return [dottedQuad(hi, lo)];
  if (g[0] === 0x2002) return [dottedQuad(g[1]!, g[2]!)];
  if (g[0] === 0x2001 && g[1] === 0) return [dottedQuad(hi ^ 0xffff, lo ^ 0xffff), dottedQuad(g[2]!, g[3]!)];
  return [];
}
