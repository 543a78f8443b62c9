import { randomBytes } from 'node:crypto';
import { openToken, sealToken } from '../../src/payments/secrets.js';

describe('access tokens sealed at rest (AES-256-GCM, key rotation)', () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const token = `eyJ.${randomBytes(64).toString('base64url')}.sig`;

  test('a token sealed with the old key opens after rotating (new key first, old kept)', () => {
    const sealed = sealToken(token, [oldKey]);
    expect(sealed).not.toContain(token);
    expect(openToken(sealed, [newKey, oldKey])).toBe(token);
  });

  test('after rotating, new tokens are sealed with the new key and need it to open', () => {
    const sealed = sealToken(token, [newKey, oldKey]);
    expect(openToken(sealed, [newKey])).toBe(token);
    expect(() => openToken(sealed, [oldKey])).toThrow(/unknown key/);
  });

  test('a tampered or malformed sealed token does not open', () => {
    const sealed = sealToken(token, [newKey]);
    const parts = sealed.split('.');
    const data = Buffer.from(parts[4]!, 'base64url');
    data[0] = (data[0] ?? 0) ^ 1;
    parts[4] = data.toString('base64url');
    expect(() => openToken(parts.join('.'), [newKey])).toThrow();
    expect(() => openToken('v1.x', [newKey])).toThrow(/malformed/);
  });
});
