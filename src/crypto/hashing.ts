import { createHash, timingSafeEqual } from 'node:crypto';

/** Hashes of stored secrets (client secrets, notification tokens): only the hash is kept. */

/**
 * FNV-1a (32 bit, over UTF-16 code units), unsigned: a fast, stable spread for keys, not a secret.
 * claim-4.lua has its own copy (bucketOf); the two must agree.
 */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** Characters of a stored check value: 22 base64url characters, 132 bits of the SHA-256. */
const CHECK_VALUE_CHARS = 22;

/**
 * The stored check value of a long random secret (a payment's client secret, 160 bits): the first
 * 132 bits of its SHA-256 (issue 12.4: 21 bytes less in every payment hash). It only has to resist
 * preimages, not collisions: whoever reads it must still find a secret that hashes to it, about
 * 2^132 tries, more than guessing the secret itself (2^160 candidates, or online, against the API).
 */
export function secretCheckValue(secret: string): string {
  return sha256(secret).slice(0, CHECK_VALUE_CHARS);
}

/**
 * Constant-time comparison of a presented secret with a stored hash: a whole SHA-256 (43
 * characters, as written before issue 12.4) or a check value (`secretCheckValue`).
 */
export function matchesHash(presented: string, storedHash: string): boolean {
  const digest = sha256(presented);
  const a = Buffer.from(storedHash.length === CHECK_VALUE_CHARS ? digest.slice(0, CHECK_VALUE_CHARS) : digest);
  const b = Buffer.from(storedHash);
  return a.length === b.length && timingSafeEqual(a, b);
}
