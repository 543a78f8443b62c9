import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig } from '../../src/config.js';
import { addressLimitKey, parseTrustProxy } from '../../src/net-address.js';
import { normaliseLoginHint } from '../../src/payments/login-hint.js';

/** Issue 11.6: proxies, client addresses, customer names and the new limits' configuration. */
const BASE = {
  TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  BANK_ISSUER: 'https://bank.example',
  BANK_API_URL: 'https://bank.example/api',
  BANK_CA_CERT: 'ca.pem',
  BANK_CLIENT_ID: 'shop',
  BANK_CLIENT_CERT: 'client.pem',
  BANK_CLIENT_KEY: 'client.key',
};

function configError(env: Record<string, string>): string {
  try {
    loadConfig({ ...BASE, ...env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('TRUST_PROXY', () => {
  test.each([
    ['false', false],
    ['0', false],
    ['1', 1],
    ['2', 2],
    ['10.0.0.0/8', ['10.0.0.0/8']],
    [' 10.0.0.1, loopback ,2001:db8::/32', ['10.0.0.1', 'loopback', '2001:db8::/32']],
  ])('when it is %p, then express gets %p', (raw, expected) => {
    expect(loadConfig({ ...BASE, TRUST_PROXY: raw }).trustProxy).toEqual(expected);
  });

  test.each(['true', 'TRUE', 'yes', '*'])('when it is %p, then start-up stops with one line', (raw) => {
    const line = configError({ TRUST_PROXY: raw });
    expect(line).toMatch(/^TRUST_PROXY: must be a hop count .* "true" would believe any X-Forwarded-For$/);
    expect(line).not.toContain('\n');
  });

  test.each(['10.0.0.0/33', 'proxy.example', '1.2.3', '17', '10.0.0.0/8/1'])(
    'when it is %p, then it is refused',
    (raw) => {
      expect(configError({ TRUST_PROXY: raw })).toMatch(/^TRUST_PROXY: /);
    },
  );

  test('parseTrustProxy says why', () => {
    expect(parseTrustProxy('true')).toHaveProperty('error');
    expect(parseTrustProxy('3')).toEqual({ value: 3 });
  });
});

describe('the new limits', () => {
  test('when nothing is set, then one pending request per customer, caps and a 30 s cool-down apply', () => {
    const config = loadConfig(BASE);
    expect(config.limits).toMatchObject({
      loginHintPerHour: 20,
      loginHintPerDay: 50,
      maxPendingPerLoginHint: 1,
      denialCooldownSeconds: 30,
      denialCooldownMaxSeconds: 3600,
    });
    expect(config.sse).toEqual({ maxStreamsPerPayment: 5, maxStreams: 10_000 });
    expect(config.metrics).toEqual({ token: undefined, port: undefined });
  });

  test.each([
    [{ CHECKOUT_MAX_PENDING_PER_LOGIN_HINT: '-1' }, /^CHECKOUT_MAX_PENDING_PER_LOGIN_HINT: /],
    [{ SSE_MAX_STREAMS: '0' }, /^SSE_MAX_STREAMS: /],
    [{ METRICS_TOKEN: 'short' }, /^METRICS_TOKEN: /],
    [{ METRICS_PORT: '3000' }, /^METRICS_PORT: must differ from PORT/],
    [{ RATE_LIMIT_LOGIN_HINT_PER_DAY: 'many' }, /^RATE_LIMIT_LOGIN_HINT_PER_DAY: /],
  ])('when %p, then one line names the variable', (env, line) => {
    expect(configError(env as Record<string, string>)).toMatch(line);
  });
});

describe('client addresses for limits', () => {
  test.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
  ])('when the address is %p, then it is limited as %p', (address, key) => {
    expect(addressLimitKey(address)).toBe(key);
  });

  test('two privacy addresses of one /64 share a key; neighbouring /64s do not', () => {
    expect(addressLimitKey('2001:db8:a:b:1::1')).toBe(addressLimitKey('2001:db8:a:b:ffff:ffff:ffff:ffff'));
    expect(addressLimitKey('2001:db8:a:b::1')).not.toBe(addressLimitKey('2001:db8:a:c::1'));
  });
});

describe('login_hint normalisation', () => {
  test('spaces, case and full-width letters name one customer for limits; the bank gets trimmed NFKC', () => {
    const forms = ['user', ' User ', 'USER', 'ｕｓｅｒ', '\u00a0user'];
    const keys = new Set(forms.map((f) => normaliseLoginHint(f).limitKey));
    expect(keys.size).toBe(1);
    expect(normaliseLoginHint(' User ').loginHint).toBe('User');
    expect(normaliseLoginHint('ｕｓｅｒ').loginHint).toBe('user');
    expect(normaliseLoginHint('straße').limitKey).toBe(normaliseLoginHint('STRASSE').limitKey);
    expect(normaliseLoginHint('user').limitKey).not.toBe(normaliseLoginHint('user2').limitKey);
    expect(normaliseLoginHint('user').limitKey).not.toContain('user');
  });
});
