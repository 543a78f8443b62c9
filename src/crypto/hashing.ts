import { createHash, timingSafeEqual } from 'node:crypto';

/** Hashes of stored secrets (client secrets, notification tokens): only the hash is kept. */

export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function matchesHash(presented: string, storedHash: string): boolean {
  const a = Buffer.from(sha256(presented));
  const b = Buffer.from(storedHash);
  return a.length === b.length && timingSafeEqual(a, b);
}
