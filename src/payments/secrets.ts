import { createCipheriv, createDecipheriv, createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/** Random ids and secrets, hashing for stored secrets, and sealing of access tokens at rest. */

export const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

export function randomBase32(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += BASE32.charAt(b & 31);
  return out;
}

export function newEventId(): string {
  return `msg_${randomBase32(24)}`;
}

/** The storefront's bearer secret for one payment (160 bits). Only its hash is stored. */
export function newClientSecret(paymentId: string): string {
  return `${paymentId}_secret_${randomBase32(32)}`;
}

/** CIBA ping: ≥128 bits of randomness per request (CIBA Core §7.1, client_notification_token). */
export function newNotificationToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * A short code shown on the checkout and in the bank app, so the customer can tell the two belong
 * together (CIBA Core §7.1 binding_message). No 0/O/1/I to misread.
 */
export function newBindingMessage(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const pick = (n: number) => Array.from({ length: n }, () => alphabet[randomInt(alphabet.length)]).join('');
  return `${pick(4)}-${pick(2)}`;
}

export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function matchesHash(presented: string, storedHash: string): boolean {
  const a = Buffer.from(sha256(presented));
  const b = Buffer.from(storedHash);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * AES-256-GCM sealing of tokens at rest: `v1.<key index>.<iv>.<tag>.<ciphertext>`. The first key
 * seals; every key can open, so a key can be rotated in by putting the new one first.
 */
export function sealToken(plain: string, keys: readonly Buffer[]): string {
  const key = keys[0];
  if (!key) throw new Error('no token encryption key');
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  const fingerprint = sha256(key.toString('base64')).slice(0, 8);
  return [
    'v1',
    fingerprint,
    iv.toString('base64url'),
    cipher.getAuthTag().toString('base64url'),
    data.toString('base64url'),
  ].join('.');
}

export function openToken(sealed: string, keys: readonly Buffer[]): string {
  const [version, fingerprint, iv, tag, data] = sealed.split('.');
  if (version !== 'v1' || !fingerprint || !iv || !tag || data === undefined) throw new Error('malformed sealed token');
  const key = keys.find((k) => sha256(k.toString('base64')).slice(0, 8) === fingerprint);
  if (!key) throw new Error('sealed with an unknown key');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
}
