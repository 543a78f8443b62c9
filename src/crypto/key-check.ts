import { createHmac } from 'node:crypto';
import { open, seal } from './sealing.js';

/**
 * The deployment's key check value (issue 11.4): a known text sealed with the first key of
 * TOKEN_ENCRYPTION_KEY by the first process that starts. Every later process must be able to open
 * it, so processes that could not open each other's sealed tokens refuse to start instead of
 * failing payments one by one.
 */

const CONTEXT = 'deployment/key-check';
const TEXT = 'ciba-checkout key check v1';

export function sealKeyCheck(keys: readonly Buffer[]): string {
  return seal(TEXT, keys, CONTEXT);
}

/**
 * `current`: sealed with our first key. `older_key`: opened by a later key (a rotation in progress;
 * the caller re-seals it with the first). `mismatch`: none of our keys opens it.
 */
export function judgeKeyCheck(sealed: string, keys: readonly Buffer[]): 'current' | 'older_key' | 'mismatch' {
  for (const [index, key] of keys.entries()) {
    try {
      if (open(sealed, [key], CONTEXT) === TEXT) return index === 0 ? 'current' : 'older_key';
    } catch {
      // not this key
    }
  }
  return 'mismatch';
}

/**
 * A key's public name: which key a process holds can be compared across processes without the key
 * leaving them (HMAC under the key itself, 128 bits; says nothing about the key).
 */
export function keyFingerprint(key: Buffer): string {
  return createHmac('sha256', key).update('ciba-checkout key fingerprint v1').digest('hex').slice(0, 32);
}

export class KeyCheckError extends Error {
  override readonly name = 'KeyCheckError';
}
