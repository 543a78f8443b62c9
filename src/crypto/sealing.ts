import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { sha256 } from './hashing.js';

/**
 * AES-256-GCM sealing of values at rest (access tokens, stored checkout answers):
 * `v2.<key fingerprint>.<iv>.<tag>.<ciphertext>`. The first key seals; every configured key can open,
 * so a key is rotated in by putting the new one first (TOKEN_ENCRYPTION_KEY).
 *
 * Each value is bound to where it belongs (`context`, e.g. `pay_…/token`) as GCM additional data
 * (NIST SP 800-38D §5.2.1): a sealed token copied into another payment, or into another field, does
 * not open. The tag is always the full 16 bytes: Node accepts shorter tags on decipher unless
 * `authTagLength` is given, and a 4-byte tag could be forged by trial (SP 800-38D Appendix C).
 */

const VERSION = 'v2';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SealError extends Error {
  override readonly name = 'SealError';
}

/** A short, non-secret name for a key, stored beside each sealed value to pick the key that opens it. */
export function keyFingerprint(key: Buffer): string {
  return sha256(key.toString('base64')).slice(0, 8);
}

export function seal(plain: string, keys: readonly Buffer[], context: string): string {
  const key = keys[0];
  if (!key) throw new SealError('no token encryption key');
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return [
    VERSION,
    keyFingerprint(key),
    iv.toString('base64url'),
    cipher.getAuthTag().toString('base64url'),
    data.toString('base64url'),
  ].join('.');
}

/** Opens a sealed value with whichever configured key sealed it; throws SealError when it cannot. */
export function open(sealed: string, keys: readonly Buffer[], context: string): string {
  const [version, fingerprint, iv, tag, data] = sealed.split('.');
  if (version !== VERSION || !fingerprint || !iv || !tag || data === undefined) {
    throw new SealError('malformed sealed value');
  }
  const key = keys.find((k) => keyFingerprint(k) === fingerprint);
  if (!key) throw new SealError('sealed with an unknown key');
  const tagBytes = Buffer.from(tag, 'base64url');
  const ivBytes = Buffer.from(iv, 'base64url');
  if (tagBytes.length !== TAG_BYTES || ivBytes.length !== IV_BYTES) throw new SealError('malformed sealed value');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, ivBytes, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(tagBytes);
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new SealError('sealed value does not open here (tampered, or moved from another payment or field)');
  }
}

/** Sealing with the deployment's keys (TOKEN_ENCRYPTION_KEY, newest first), for callers that need not hold them. */
export function createSealer(keys: readonly Buffer[]): {
  seal(plain: string, context: string): string;
  open(sealed: string, context: string): string;
} {
  return {
    seal: (plain, context) => seal(plain, keys, context),
    open: (sealed, context) => open(sealed, keys, context),
  };
}
