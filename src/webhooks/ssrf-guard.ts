import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Server-side request forgery guard for webhook targets (DESIGN.md "private addresses are refused
 * unless allowed"). Callback URLs come from the shop's checkout requests, so a target must never
 * reach the service's own network: loopback, private, link-local (cloud metadata at 169.254.169.254),
 * CGNAT, multicast, reserved and unspecified ranges, and IPv6 forms of them, are refused.
 *
 * The check runs inside the socket's own DNS lookup (undici `connect.lookup`), so the address that
 * was checked is the address connected to: no DNS rebinding between check and connect.
 */

export class BlockedAddressError extends Error {
  override readonly name = 'BlockedAddressError';
  readonly code = 'ERR_WEBHOOK_BLOCKED_ADDRESS';
}

/** IANA special-purpose registries (RFC 6890 and successors); IPv4-mapped IPv6 is matched by BlockList. */
const BLOCKED_V4: readonly [string, number][] = [
  ['0.0.0.0', 8], // "this network", includes unspecified
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // CGNAT, RFC 6598
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, includes broadcast
];

const BLOCKED_V6: readonly [string, number][] = [
  ['::', 96], // unspecified, loopback and deprecated IPv4-compatible addresses
  ['::ffff:0:0:0', 96], // IPv4-translated (RFC 2765): embeds an IPv4 address
  ['2001::', 32], // Teredo: embeds an IPv4 address
  ['64:ff9b::', 96], // NAT64: may translate to any IPv4 address, private ones included
  ['64:ff9b:1::', 48], // local-use NAT64, RFC 8215
  ['100::', 64], // discard-only
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: embeds an IPv4 address
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // deprecated site-local
  ['ff00::', 8], // multicast
];

function buildBlockList(): BlockList {
  const list = new BlockList();
  for (const [net, prefix] of BLOCKED_V4) list.addSubnet(net, prefix, 'ipv4');
  for (const [net, prefix] of BLOCKED_V6) list.addSubnet(net, prefix, 'ipv6');
  return list;
}

const blocked = buildBlockList();

/** True for an address a webhook may be sent to (a public unicast address). */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return !blocked.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** The host of a URL without IPv6 brackets. */
function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/**
 * Refuses a URL whose host is a literal IP that is not public. Needed besides the lookup guard:
 * the socket does no DNS lookup for a literal address.
 */
export function assertAllowedUrl(url: URL, allowPrivate: boolean): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new BlockedAddressError(`scheme ${url.protocol} is not allowed`);
  const host = hostOf(url);
  if (allowPrivate || isIP(host) === 0) return;
  if (!isPublicAddress(host)) throw new BlockedAddressError(`address ${host} is not public`);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net/tls.connect that resolves every address of the host and fails when any of them
 * is not public (a host with one private address could be steered to it), then hands the checked
 * addresses to the socket, which connects to exactly those.
 */
export function createGuardedLookup(allowPrivate: boolean): LookupFunction {
  const guarded = (
    hostname: string,
    options: { all?: boolean; family?: number | string },
    callback: LookupCallback,
  ) => {
    dnsLookup(hostname, { all: true, family: Number(options.family ?? 0) || 0, verbatim: true }, (err, addresses) => {
      if (err) {
        callback(err, []);
        return;
      }
      const refused = allowPrivate ? undefined : addresses.find((a) => !isPublicAddress(a.address));
      if (refused) {
        callback(new BlockedAddressError(`${hostname} resolves to ${refused.address}, which is not public`), []);
        return;
      }
      const first = addresses[0];
      if (!first) {
        callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), []);
        return;
      }
      if (options.all) callback(null, addresses);
      else callback(null, first.address, first.family);
    });
  };
  return guarded as unknown as LookupFunction;
}
