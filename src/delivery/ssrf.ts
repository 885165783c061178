import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * The guard against server-side request forgery: a webhook, callback or source URL must
 * not reach loopback, private networks, cloud metadata or other reserved addresses.
 *
 * Two places check: `isPrivateHost` refuses obvious cases when a URL is saved (a clear
 * 400), and `TargetGuard` checks the address actually connected to, on every attempt.
 * The guard's `lookup` is handed to the socket, so the address checked is the address
 * connected to: a name cannot pass the check with one answer and connect with another.
 */

/** Why an address class is refused, as it reads in an attempt's recorded reason. */
type AddressClass =
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'shared (CGNAT)'
  | 'benchmarking'
  | 'multicast'
  | 'reserved'
  | 'unspecified'
  | 'documentation';

const V4_RANGES: readonly [string, number, AddressClass][] = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'shared (CGNAT)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

const v4Lists = new Map<AddressClass, BlockList>();
for (const [net, prefix, kind] of V4_RANGES) {
  let list = v4Lists.get(kind);
  if (!list) v4Lists.set(kind, (list = new BlockList()));
  list.addSubnet(net, prefix, 'ipv4');
}

function classifyV4(address: string): AddressClass | undefined {
  for (const [kind, list] of v4Lists) if (list.check(address, 'ipv4')) return kind;
  return undefined;
}

/** The eight 16-bit groups of an IPv6 address (zone id dropped), or undefined. */
function v6Groups(address: string): number[] | undefined {
  let text = address.replace(/%.*$/, '');
  if (isIP(text) !== 6) return undefined;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -dotted[1]!.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const part = (s: string | undefined) => (s ? s.split(':').map((h) => parseInt(h, 16)) : []);
  const left = part(head);
  const right = part(tail);
  const fill = tail === undefined ? [] : new Array<number>(8 - left.length - right.length).fill(0);
  const groups = [...left, ...fill, ...right];
  return groups.length === 8 ? groups : undefined;
}

const v4Of = (hi: number, lo: number): string => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;

/**
 * IPv6 is refused unless it is global unicast (2000::/3) outside the special ranges in
 * it; wrappers that carry an IPv4 address (mapped, NAT64, 6to4) are judged by that
 * address, so `::ffff:127.0.0.1` is loopback and `64:ff9b::a9fe:a9fe` link-local.
 */
function classifyV6(g: number[]): AddressClass | { v4: string } | undefined {
  const zeroUpTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(8)) return 'unspecified';
  if (zeroUpTo(7) && g[7] === 1) return 'loopback';
  if (zeroUpTo(5) && g[5] === 0xffff) return { v4: v4Of(g[6]!, g[7]!) }; // ::ffff:0:0/96
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) {
    return { v4: v4Of(g[6]!, g[7]!) }; // well-known NAT64, 64:ff9b::/96
  }
  if (g[0] === 0x2002) return { v4: v4Of(g[1]!, g[2]!) }; // 6to4
  if ((g[0]! & 0xff00) === 0xff00) return 'multicast';
  if ((g[0]! & 0xffc0) === 0xfe80) return 'link-local';
  if ((g[0]! & 0xfe00) === 0xfc00) return 'private';
  if ((g[0]! & 0xe000) !== 0x2000) return 'reserved'; // not global unicast (incl. ::/96, fec0::/10)
  if (g[0] === 0x2001 && g[1]! < 0x0200) return 'reserved'; // Teredo, ORCHID, benchmarking...
  if (g[0] === 0x2001 && g[1] === 0x0db8) return 'documentation';
  if (g[0] === 0x3fff && g[1]! < 0x1000) return 'documentation';
  return undefined;
}

/** The class that makes an address refused, or undefined for a public address. */
export function blockedClass(address: string): AddressClass | undefined {
  const family = isIP(address.replace(/%.*$/, ''));
  if (family === 4) return classifyV4(address);
  if (family !== 6) return undefined;
  const groups = v6Groups(address);
  if (!groups) return 'reserved';
  const v6 = classifyV6(groups);
  if (typeof v6 === 'object') return classifyV4(v6.v4);
  return v6;
}

export function isBlockedAddress(address: string): boolean {
  return blockedClass(address) !== undefined;
}

/** True for a URL host that is obviously local: `localhost`, or a blocked literal address. */
export function isPrivateHost(hostname: string): boolean {
  const host = hostname
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  return isBlockedAddress(host);
}

/** Resolves a host name to every address it has; replaceable so tests can lie. */
export type Resolver = (hostname: string) => Promise<readonly LookupAddress[]>;

export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) =>
      error ? reject(error) : resolve(addresses),
    );
  });

export interface TargetPolicy {
  /** Turns the guard off (local use). */
  allowPrivateTargets?: boolean;
  /** CIDRs permitted even though they are private, e.g. `10.1.0.0/16`. */
  allowedTargetCidrs?: readonly string[];
  lookup?: Resolver;
}

/** A connection the guard refused; its message is what the attempt records. */
export class BlockedTargetError extends Error {
  override name = 'BlockedTargetError';
  readonly code = 'ERR_BLOCKED_TARGET';
}

/** Parses `addr/prefix`; throws on anything else (used by the config too). */
export function parseCidr(text: string): { address: string; prefix: number; family: 4 | 6 } {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  const family = match ? isIP(match[1]!) : 0;
  const prefix = match ? Number(match[2]) : NaN;
  if (!match || family === 0 || prefix > (family === 4 ? 32 : 128)) {
    throw new Error(`"${text}" is not a CIDR range like 10.0.0.0/8 or fd00::/8`);
  }
  return { address: match[1]!, prefix, family: family as 4 | 6 };
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

export class TargetGuard {
  private readonly allowed = new BlockList();
  private readonly resolve: Resolver;

  constructor(private readonly policy: TargetPolicy = {}) {
    for (const cidr of policy.allowedTargetCidrs ?? []) {
      const { address, prefix, family } = parseCidr(cidr);
      this.allowed.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
    }
    this.resolve = policy.lookup ?? systemResolver;
  }

  get enabled(): boolean {
    return this.policy.allowPrivateTargets !== true;
  }

  /** Why this address may not be connected to, or undefined when it may. */
  refusal(address: string): string | undefined {
    if (!this.enabled) return undefined;
    const bare = address.replace(/^\[|\]$/g, '');
    const kind = blockedClass(bare);
    if (kind === undefined) return undefined;
    const family = isIP(bare.replace(/%.*$/, '')) === 6 ? 'ipv6' : 'ipv4';
    if (this.allowed.check(bare.replace(/%.*$/, ''), family)) return undefined;
    const groups = family === 'ipv6' ? v6Groups(bare) : undefined;
    const wrapped = groups ? classifyV6(groups) : undefined;
    if (typeof wrapped === 'object' && this.allowed.check(wrapped.v4, 'ipv4')) return undefined;
    // Same words whatever the port and whether anything listens: no port-scan oracle.
    return `Refused: the target address is ${kind === 'unspecified' ? 'unspecified' : `on a ${kind} network`}; private targets are not allowed`;
  }

  /**
   * Checks a URL whose host is a literal address (a socket skips `lookup` for those).
   * The host is as WHATWG URL normalised it, so `0177.0.0.1`, `0x7f.0.0.1` and
   * `2130706433` are all 127.0.0.1 here. Names are left to `lookup`.
   */
  checkUrl(url: string | URL): string | undefined {
    if (!this.enabled) return undefined;
    const { hostname } = typeof url === 'string' ? new URL(url) : url;
    const host = hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0) return this.refusal(host);
    return undefined;
  }

  /**
   * A `lookup` for `net.connect`: resolves every address of the name and refuses the
   * connection when any of them is blocked, so a name with mixed public and private
   * answers cannot be steered to its private one. Answers in the shape asked for
   * (`all` with happy eyeballs, a single address otherwise).
   */
  readonly lookup = (
    hostname: string,
    options: { all?: boolean; family?: number | string } | number,
    callback: LookupCallback,
  ): void => {
    const opts = typeof options === 'number' ? { family: options } : options;
    this.resolve(hostname).then(
      (addresses) => {
        const wanted = addresses.filter(
          (a) => !opts.family || opts.family === 0 || Number(opts.family) === a.family,
        );
        for (const a of addresses) {
          const reason = this.refusal(a.address);
          if (reason) return callback(new BlockedTargetError(reason), opts.all ? [] : '', 0);
        }
        if (wanted.length === 0) {
          const error: NodeJS.ErrnoException = new Error(`${hostname} has no address`);
          error.code = 'ENOTFOUND';
          return callback(error, opts.all ? [] : '', 0);
        }
        if (opts.all) return callback(null, [...wanted]);
        return callback(null, wanted[0]!.address, wanted[0]!.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, opts.all ? [] : '', 0),
    );
  };
}
