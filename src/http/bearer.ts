import type { Request } from 'express';
import { timingSafeEqual } from 'node:crypto';
import type { Caller } from '../payments/start-checkout.js';

/**
 * The one reader of `Authorization` headers. The auth-scheme is a case-insensitive token
 * (RFC 9110 §11.1, formerly RFC 7235 §2.1), so `Bearer`, `bearer` and `BEARER` are the same scheme;
 * the credentials follow after one or more spaces (RFC 9110 §11.4, RFC 6750 §2.1).
 */
const BEARER = /^bearer +(\S+) *$/i;

/** The bearer credentials of an `Authorization` header value, or null when it holds none. */
export function parseBearer(header: string | undefined): string | null {
  if (header === undefined) return null;
  return BEARER.exec(header)?.[1] ?? null;
}

/** The bearer credentials of the request's `Authorization` header, or null. */
export function headerBearer(req: Request): string | null {
  return parseBearer(req.get('authorization'));
}

/** Whether `presented` is the shop key, compared in constant time. */
export function isShopKey(presented: string | null, shopApiKey: string | undefined): boolean {
  if (!presented || !shopApiKey) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(shopApiKey);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Who is calling, as far as the shop key tells: the shop, nobody, or someone with credentials we do not know. */
export function callerOf(req: Request, shopApiKey: string | undefined): Caller {
  const presented = headerBearer(req);
  if (presented === null) return req.get('authorization') === undefined ? 'anonymous' : 'bad_credentials';
  return isShopKey(presented, shopApiKey) ? 'shop' : 'bad_credentials';
}
