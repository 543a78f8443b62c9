import { randomBytes } from 'node:crypto';
import {
  matchesHash,
  newBindingMessage,
  newClientSecret,
  newEventId,
  newNotificationToken,
  newPaymentId,
  openToken,
  sealToken,
  sha256,
} from '../../src/payments/secrets.js';

const BASE32 = '[a-z2-7]';

function distinct(make: () => unknown, n = 200): number {
  return new Set(Array.from({ length: n }, make)).size;
}

/** Flips one character of a base64url field to another valid base64url character. */
function flip(field: string, index = 0): string {
  const c = field.charAt(index);
  return field.slice(0, index) + (c === 'A' ? 'B' : 'A') + field.slice(index + 1);
}

describe('ids and secrets', () => {
  test('when a payment id is made, then it is pay_ + 20 base32 chars (100 bits) and unique', () => {
    expect(newPaymentId()).toMatch(new RegExp(`^pay_${BASE32}{20}$`));
    expect(distinct(newPaymentId)).toBe(200);
  });

  test('when an event id is made, then it is msg_ + 24 base32 chars', () => {
    expect(newEventId()).toMatch(new RegExp(`^msg_${BASE32}{24}$`));
    expect(distinct(newEventId)).toBe(200);
  });

  test('when a client secret is made, then it is <payment id>_secret_ + 32 base32 chars (160 bits)', () => {
    const id = newPaymentId();
    const secret = newClientSecret(id);
    expect(secret).toMatch(new RegExp(`^${id}_secret_${BASE32}{32}$`));
    expect(distinct(() => newClientSecret(id))).toBe(200);
  });

  test('when the base32 ids are made, then every one of the 32 characters shows up (no bias to a few)', () => {
    const seen = new Set(Array.from({ length: 200 }, () => newPaymentId().slice(4)).join(''));
    expect(seen.size).toBe(32);
  });

  test('when a notification token is made, then it is 32 random bytes in base64url (≥128 bits, CIBA Core §7.1)', () => {
    const token = newNotificationToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    expect(distinct(newNotificationToken)).toBe(200);
  });

  test('when a binding message is made, then it is XXXX-XX without 0, O, 1 or I', () => {
    const messages = Array.from({ length: 500 }, newBindingMessage);
    for (const m of messages) expect(m).toMatch(/^[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{2}$/);
    const chars = new Set(messages.join('').replace(/-/g, ''));
    for (const c of '01OI') expect(chars.has(c)).toBe(false);
    expect(chars.size).toBe(32);
  });
});

describe('matchesHash', () => {
  test('when the presented secret is the hashed one, then it matches', () => {
    const secret = newClientSecret(newPaymentId());
    expect(matchesHash(secret, sha256(secret))).toBe(true);
  });

  test.each([
    ['another secret', (s: string) => `${s}x`],
    ['a prefix', (s: string) => s.slice(0, -1)],
    ['the empty string', () => ''],
    ['the hash itself', (s: string) => sha256(s)],
  ])('when %s is presented, then it does not match', (_name, present) => {
    const secret = newClientSecret(newPaymentId());
    expect(matchesHash(present(secret), sha256(secret))).toBe(false);
  });

  test('when the stored hash has another length, then it does not match (and does not throw)', () => {
    expect(matchesHash('x', 'short')).toBe(false);
  });
});

describe('sealToken / openToken', () => {
  const keyA = randomBytes(32);
  const keyB = randomBytes(32);
  const token = 'eyJhbGciOiJQUzI1NiJ9.payload.signature-ü';

  test('when sealed and opened with the same key, then the token comes back', () => {
    const sealed = sealToken(token, [keyA]);
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('payload');
    expect(openToken(sealed, [keyA])).toBe(token);
  });

  test('when sealed twice, then the outputs differ (a fresh IV each time)', () => {
    expect(sealToken(token, [keyA])).not.toBe(sealToken(token, [keyA]));
  });

  test.each([
    ['the ciphertext', 4],
    ['the tag', 3],
    ['the IV', 2],
  ])('when %s is tampered with, then opening throws', (_name, part) => {
    const fields = sealToken(token, [keyA]).split('.');
    fields[part] = flip(fields[part] ?? '');
    expect(() => openToken(fields.join('.'), [keyA])).toThrow();
  });

  test('when the text is malformed, then opening throws "malformed"', () => {
    expect(() => openToken('v2.a.b.c.d', [keyA])).toThrow(/malformed/);
    expect(() => openToken('v1.only.three', [keyA])).toThrow(/malformed/);
  });

  test('when a new key is put first (rotation), then tokens sealed with the old key still open and new ones use the new key', () => {
    const old = sealToken(token, [keyA]);
    const rotated = [keyB, keyA];
    expect(openToken(old, rotated)).toBe(token);
    const fresh = sealToken(token, rotated);
    expect(openToken(fresh, [keyB])).toBe(token);
    expect(() => openToken(fresh, [keyA])).toThrow(/unknown key/);
  });

  test('when the key that sealed is gone, then opening throws "unknown key"', () => {
    const sealed = sealToken(token, [keyA]);
    expect(() => openToken(sealed, [keyB])).toThrow(/unknown key/);
  });

  test('when the fingerprint is swapped for another known key, then the auth tag check fails', () => {
    const fields = sealToken(token, [keyA]).split('.');
    fields[1] = sha256(keyB.toString('base64')).slice(0, 8);
    expect(() => openToken(fields.join('.'), [keyA, keyB])).toThrow();
  });

  test('when there is no key, then sealing throws', () => {
    expect(() => sealToken(token, [])).toThrow(/no token encryption key/);
  });
});
