import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';
import type { SandboxKeys } from './keys.js';

/**
 * The OP's PS256 signing key (ID tokens, JWT access tokens), kept in Redis so a restarted sandbox
 * keeps the same `kid` and the shop's cached JWKS stays valid. SET NX: when two sandboxes start
 * against one prefix at once, both end up with the key that was stored first.
 */
export async function loadOrCreateSigningJwks(redis: Redis, keys: SandboxKeys): Promise<{ keys: JWK[] }> {
  const stored = await redis.get(keys.jwks());
  if (stored !== null) return JSON.parse(stored) as { keys: JWK[] };
  const { privateKey } = await generateKeyPair('PS256', { modulusLength: 2048, extractable: true });
  const jwk = await exportJWK(privateKey);
  const fresh = { keys: [{ ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'PS256', use: 'sig' }] };
  await redis.set(keys.jwks(), JSON.stringify(fresh), 'NX');
  return JSON.parse((await redis.get(keys.jwks())) ?? JSON.stringify(fresh)) as { keys: JWK[] };
}

/** Keys for oidc-provider's signed cookies; persisted for the same reason as the JWKS. */
export async function loadOrCreateCookieKeys(redis: Redis, keys: SandboxKeys): Promise<string[]> {
  await redis.set(keys.cookieKeys(), randomBytes(32).toString('base64url'), 'NX');
  return [(await redis.get(keys.cookieKeys())) ?? randomBytes(32).toString('base64url')];
}
