import { createCipheriv, randomBytes } from 'node:crypto';
import { keyFingerprint, open, seal } from '../../src/crypto/sealing.js';

describe('values sealed at rest (AES-256-GCM bound to payment and field, key rotation)', () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const token = `eyJ.${randomBytes(64).toString('base64url')}.sig`;
  const here = 'pay_aaaa/token';

  test('a token sealed with the old key opens after rotating (new key first, old kept)', () => {
    const sealed = seal(token, [oldKey], here);
    expect(sealed).not.toContain(token);
    expect(open(sealed, [newKey, oldKey], here)).toBe(token);
  });

  test('after rotating, new tokens are sealed with the new key and need it to open', () => {
    const sealed = seal(token, [newKey, oldKey], here);
    expect(open(sealed, [newKey], here)).toBe(token);
    expect(() => open(sealed, [oldKey], here)).toThrow(/unknown key/);
  });

  test('when a sealed token is moved to another payment or another field, then it does not open', () => {
    const sealed = seal(token, [newKey], here);
    expect(() => open(sealed, [newKey], 'pay_bbbb/token')).toThrow(/does not open/);
    expect(() => open(sealed, [newKey], 'pay_aaaa/held_token')).toThrow(/does not open/);
  });

  test('a tampered or malformed sealed token does not open', () => {
    const sealed = seal(token, [newKey], here);
    const parts = sealed.split('.');
    const data = Buffer.from(parts[4]!, 'base64url');
    data[0] = (data[0] ?? 0) ^ 1;
    parts[4] = data.toString('base64url');
    expect(() => open(parts.join('.'), [newKey], here)).toThrow();
    expect(() => open('v2.x', [newKey], here)).toThrow(/malformed/);
  });

  test('the tag is the full 16 bytes, and a value with a truncated tag is refused (no short-tag forgery)', () => {
    const sealed = seal(token, [newKey], here);
    expect(Buffer.from(sealed.split('.')[3]!, 'base64url')).toHaveLength(16);
    // A genuine GCM encryption whose tag is cut to 4 bytes: Node would accept it without authTagLength.
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', newKey, iv);
    cipher.setAAD(Buffer.from(here));
    const data = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
    const shortTag = cipher.getAuthTag().subarray(0, 4);
    const forged = [
      'v2',
      keyFingerprint(newKey),
      iv.toString('base64url'),
      shortTag.toString('base64url'),
      data.toString('base64url'),
    ].join('.');
    expect(() => open(forged, [newKey], here)).toThrow(/malformed/);
  });
});
