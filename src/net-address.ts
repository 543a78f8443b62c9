import { isIP, isIPv4 } from 'node:net';

/**
 * Client addresses: which proxies to believe, and how addresses are grouped for rate limits.
 */

/** Express's `trust proxy` setting: no proxy, a hop count, or the proxies' addresses and CIDRs. */
export type TrustProxy = false | number | string[];

/** proxy-addr's names for reserved ranges (loopback 127/8 and ::1, link-local, unique-local). */
const RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isAddressOrCidr(entry: string): boolean {
  if (RANGE_NAMES.has(entry)) return true;
  const [address = '', bits, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  const max = family === 4 ? 32 : 128;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= max;
}

/**
 * TRUST_PROXY: `false` (default: the socket's address is the client), a hop count (`1` = one proxy
 * in front, e.g. a load balancer), or comma-separated proxy addresses/CIDRs. `true` is refused:
 * believing every X-Forwarded-For lets any client pick its own address and walk past the per-address
 * limits. Returns an error message for the config line, or the parsed setting.
 */
export function parseTrustProxy(raw: string): { value: TrustProxy } | { error: string } {
  const v = raw.trim().toLowerCase();
  if (v === 'false' || v === '0' || v === '') return { value: false };
  if (v === 'true' || v === 'yes' || v === '*')
    return {
      error:
        'must be a hop count (e.g. 1) or the proxies\u2019 addresses/CIDRs; "true" would believe any X-Forwarded-For',
    };
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    return hops <= 16 ? { value: hops } : { error: 'a hop count must be at most 16' };
  }
  const entries = v
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  const bad = entries.find((e) => !isAddressOrCidr(e));
  if (bad !== undefined || entries.length === 0)
    return {
      error: `"${bad ?? raw}" is neither a hop count nor an IP address, CIDR or loopback/linklocal/uniquelocal`,
    };
  return { value: entries };
}

/** The eight 16-bit groups of an IPv6 address (with an embedded IPv4 tail expanded). */
function ipv6Groups(address: string): number[] {
  let text = address.split('%')[0] ?? '';
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const [a = 0, b = 0, c = 0, d = 0] = v4[1].split('.').map(Number);
    text = text.slice(0, -v4[1].length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (part: string) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/**
 * The key an address is rate-limited under. IPv6 clients get a whole /64 from their provider (RFC
 * 6177, RFC 7421) and can pick any address in it (privacy addresses, RFC 8981), so limits count per
 * /64; IPv4 and IPv4-mapped IPv6 addresses count as themselves.
 */
export function addressLimitKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  if (isIPv4(address) || isIP(address.split('%')[0] ?? '') !== 6) return address;
  const groups = ipv6Groups(address).slice(0, 4);
  return `${groups.map((g) => g.toString(16)).join(':')}::/64`;
}
