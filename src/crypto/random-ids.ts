import { randomBytes, randomInt } from 'node:crypto';

/** Random ids and secrets of the service: unguessable, URL-safe, with a readable prefix. */

export const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

export function randomBase32(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += BASE32.charAt(b & 31);
  return out;
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

/** Who holds an Idempotency-Key claim: one per request (100 bits), so a request ends only its own claim. */
export function newClaimOwner(): string {
  return randomBase32(20);
}
