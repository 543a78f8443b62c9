import { findAuthorizationMismatch } from '../../src/ciba/authorization-details.js';
import { formatMinorUnits, parseMajorUnits } from '../../src/payments/amounts.js';
import { buildPaymentInitiationDetail } from '../../src/payments/authorization.js';
import { mapBackchannelError } from '../../src/ciba/backchannel.js';
import { formEncode } from '../../src/ciba/client-auth.js';
import { parseRetryAfter, parseRetryAfterSeconds } from '../../src/ciba/http-response.js';
import { assertIdTokenClaims } from '../../src/ciba/id-token.js';
import { mapTokenError } from '../../src/ciba/token-grant.js';

describe('amount formatting', () => {
  test.each([
    [1290, 'eur', '12.90'],
    [5, 'usd', '0.05'],
    [0, 'gbp', '0.00'],
    [100, 'chf', '1.00'],
    [123456789, 'sek', '1234567.89'],
    [500, 'jpy', '500'],
    [1234, 'kwd', '1.234'],
  ])('when %i %s, then "%s"', (amount, currency, text) => {
    expect(formatMinorUnits(amount, currency)).toBe(text);
    expect(parseMajorUnits(text, currency)).toBe(amount);
  });

  test('when the amount is not a non-negative integer or the currency unknown, then it throws', () => {
    expect(() => formatMinorUnits(12.5, 'eur')).toThrow(RangeError);
    expect(() => formatMinorUnits(-1, 'eur')).toThrow(RangeError);
    expect(() => formatMinorUnits(1, 'xyz')).toThrow(RangeError);
  });

  test('when a decimal has more places than the currency or is not plain, then it does not parse', () => {
    expect(parseMajorUnits('12.901', 'eur')).toBeUndefined();
    expect(parseMajorUnits('12.5', 'jpy')).toBeUndefined();
    expect(parseMajorUnits('1e3', 'eur')).toBeUndefined();
    expect(parseMajorUnits('-1.00', 'eur')).toBeUndefined();
    expect(parseMajorUnits('12.9', 'eur')).toBe(1290);
  });
});

describe('authorization_details', () => {
  const detail = buildPaymentInitiationDetail({
    amount: 1290,
    currency: 'eur',
    creditorName: 'Shop',
    creditorIban: 'DE89370400440532013000',
    remittanceInformation: 'Order 1',
  });

  test('when built, then it is the RFC 9396 payment_initiation shape with upper-case currency', () => {
    expect(detail).toEqual({
      type: 'payment_initiation',
      instructedAmount: { currency: 'EUR', amount: '12.90' },
      creditorName: 'Shop',
      creditorAccount: { iban: 'DE89370400440532013000' },
      remittanceInformationUnstructured: 'Order 1',
    });
  });

  test('when the same payment comes back with other detail types beside it, then no mismatch', () => {
    expect(findAuthorizationMismatch([{ type: 'account_information' }, detail], [detail])).toBeUndefined();
  });

  test.each([
    ['amount', { ...detail, instructedAmount: { currency: 'EUR', amount: '12.91' } }],
    ['amount as number', { ...detail, instructedAmount: { currency: 'EUR', amount: 12.9 } }],
    ['currency', { ...detail, instructedAmount: { currency: 'USD', amount: '12.90' } }],
    ['iban', { ...detail, creditorAccount: { iban: 'DE89370400440532013001' } }],
    ['name', { ...detail, creditorName: 'Shop Ltd' }],
    ['no creditor account', { ...detail, creditorAccount: undefined }],
  ])('when the %s differs, then a mismatch', (_name, returned) => {
    expect(findAuthorizationMismatch([returned], [detail])).toEqual(expect.any(String));
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  test.each([
    ['0', 0],
    ['7', 7000],
    [' 12 ', 12000],
    ['Thu, 01 Jan 2026 00:00:30 GMT', 30000],
    ['Wed, 31 Dec 2025 23:59:00 GMT', 0],
    ['999999999', 3_600_000],
  ])('when "%s", then %i ms', (value, ms) => {
    expect(parseRetryAfter(value, now)).toBe(ms);
  });

  test.each([undefined, '', 'soon', '-1', '1.5', 'Thu, 01 Jan 2026 00:00:30'])('when %p, then undefined', (value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });

  test('when seconds are asked for, then milliseconds round up', () => {
    expect(parseRetryAfterSeconds('Thu, 01 Jan 2026 00:00:01 GMT', now - 500)).toBe(2);
    expect(parseRetryAfterSeconds(['3', '9'], now)).toBe(3);
  });
});

describe('error-code switches', () => {
  test.each([
    ['authorization_pending', { kind: 'pending' }],
    ['slow_down', { kind: 'slow_down' }],
    ['expired_token', { kind: 'failed', failureCode: 'expired', error: 'expired_token' }],
    ['access_denied', { kind: 'failed', failureCode: 'access_denied', error: 'access_denied' }],
    ['invalid_grant', { kind: 'failed', failureCode: 'authorization_error', error: 'invalid_grant' }],
    ['unsupported_grant_type', { kind: 'failed', failureCode: 'authorization_error', error: 'unsupported_grant_type' }],
    ['brand_new', { kind: 'failed', failureCode: 'authorization_error', error: 'brand_new' }],
  ])('when the token error is %s, then %j', (error, outcome) => {
    expect(mapTokenError(error)).toEqual(outcome);
  });

  test('when the token error is long or has control characters, then it is capped and cleaned', () => {
    const outcome = mapTokenError(`x\n${'y'.repeat(100)}`);
    expect(outcome.kind === 'failed' && outcome.error).toBe(`x?${'y'.repeat(62)}`);
  });

  test.each([
    ['unknown_user_id', 'unknown_bank_user'],
    ['invalid_client', 'bank_client_error'],
    ['unauthorized_client', 'bank_client_error'],
    ['invalid_binding_message', 'bank_request_rejected'],
    ['anything_else', 'bank_request_rejected'],
  ])('when the backchannel error is %s, then %s', (error, code) => {
    expect(mapBackchannelError(error)).toBe(code);
  });
});

describe('ID token claims beyond jose', () => {
  const now = 1_800_000_000;
  const base = { iss: 'i', sub: 's', aud: 'me', iat: now, exp: now + 60 };
  test.each([
    ['two audiences without azp', { aud: ['me', 'you'] }],
    ['a foreign azp', { azp: 'you' }],
    ['an iat 331 s old', { iat: now - 331 }],
    ['an iat 31 s ahead', { iat: now + 31 }],
    ['another auth_req_id', { 'urn:openid:params:jwt:claim:auth_req_id': 'other' }],
    ['an empty sub', { sub: '' }],
  ])('when %s, then it throws', (_name, patch) => {
    expect(() => {
      assertIdTokenClaims({ ...base, ...patch }, 'me', 'ours', now);
    }).toThrow();
  });

  test('when the claims are right (330 s old, azp us), then it passes', () => {
    const claims = { ...base, aud: ['me', 'you'], azp: 'me', iat: now - 330 };
    expect(() => {
      assertIdTokenClaims(claims, 'me', 'ours', now);
    }).not.toThrow();
  });
});

describe('form encoding', () => {
  test('when a value has spaces and reserved characters, then it is form-urlencoded', () => {
    expect(formEncode("a b&c=d+e/f!'()~*")).toBe('a+b%26c%3Dd%2Be%2Ff%21%27%28%29%7E*');
  });
});
