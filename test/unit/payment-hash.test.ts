import type { PaymentRecord } from '../../src/payments/payment.js';
import { newTestPayment } from '../support/payments.js';
import { matchesHash, secretCheckValue, sha256 } from '../../src/crypto/hashing.js';
import { PAYMENT_STATUSES } from '../../src/payments/payment.js';
import {
  decodeRecord,
  decodeStatus,
  encodeFields,
  LISTPACK_VALUE_BYTES,
  splitValue,
  storedStatus,
} from '../../src/store/payment-hash.js';

const created = 1_764_079_267_412;
const pending: PaymentRecord = newTestPayment({
  id: 'pay_abcdefghijklmnopqrst',
  amount: 4170,
  items: [
    { sku: 'tea-01', quantity: 2, unitAmount: 1290 },
    { sku: 'mug-03', quantity: 1, unitAmount: 1590 },
  ],
  expiresAt: created + 300_000,
  createdAt: created,
  updatedAt: created,
  metadata: {},
  secretHash: 'EQIN6AqiEGQZKePdFaRiWTlJOGUJyToqtlGKn5_9zWw',
  authReqId: 'arid-1',
  bankConsentId: null,
}).record;

/** A hash after HSET `set` then HDEL `drop`, as Redis would hold it. */
function apply(hash: Record<string, string>, fields: Partial<PaymentRecord>, fresh = false): Record<string, string> {
  const { set, drop } = encodeFields(fields, { fresh });
  const dropped = new Set(drop);
  return Object.fromEntries(Object.entries({ ...hash, ...set }).filter(([f]) => !dropped.has(f)));
}

describe('payment hash layout (issue 12.4)', () => {
  test('a pending payment is short fields of at most 64 bytes, no id and no default values, and reads back whole', () => {
    const hash = apply({}, pending, true);
    // No `u` while updated_at is created_at; the status as its letter.
    expect(Object.keys(hash).sort()).toEqual(['a', 'b', 'c', 'h', 'i', 'r', 'status', 't', 'x']);
    expect(hash['status']).toBe('p');
    expect(hash['i']).toBe('[["tea-01",2,1290],["mug-03",1,1590]]');
    for (const v of Object.values(hash)) expect(Buffer.byteLength(v)).toBeLessThanOrEqual(LISTPACK_VALUE_BYTES);
    expect(decodeRecord(hash, pending.id)).toEqual(pending);
    expect(decodeRecord({}, pending.id)).toBeNull();
  });

  test('an auth_req_id or callback_url over 64 bytes is kept in parts of at most 64 bytes, and a shorter one drops them', () => {
    const longArid = 'ä'.repeat(40) + 'x'.repeat(100) + '😀'.repeat(10);
    const callbackUrl = `https://shop.example/${'hooks/'.repeat(30)}ciba?x=1`;
    const hash = apply({}, { ...pending, authReqId: longArid, callbackUrl }, true);
    for (const v of Object.values(hash)) expect(Buffer.byteLength(v)).toBeLessThanOrEqual(LISTPACK_VALUE_BYTES);
    expect(hash['r1']).toBeDefined();
    expect(decodeRecord(hash, pending.id)).toMatchObject({ authReqId: longArid, callbackUrl });
    const shorter = apply(hash, { authReqId: 'short', callbackUrl: null });
    expect(Object.keys(shorter).filter((f) => /^[rk]\d*$/.test(f))).toEqual(['r']);
    expect(decodeRecord(shorter, pending.id)).toMatchObject({ authReqId: 'short', callbackUrl: null });
    expect(splitValue('x'.repeat(64))).toEqual(['x'.repeat(64)]);
    expect(splitValue('x'.repeat(65 * 20)).join('')).toBe('x'.repeat(65 * 20));
  });

  test('a hash written before 12.4 (long names, item objects, id) is read, and a write never lets an old value shadow a new one', () => {
    const legacy: Record<string, string> = {
      id: pending.id,
      status: 'authorized',
      amount: '4170',
      currency: 'eur',
      items: '[{"sku":"tea-01","quantity":2,"unitAmount":1290},{"sku":"mug-03","quantity":1,"unitAmount":1590}]',
      binding: 'K7P2-QX',
      expires_at: String(pending.expiresAt),
      created_at: String(created),
      updated_at: String(created + 5),
      metadata: '{"order_id":"ord_1"}',
      secret: pending.secretHash,
      arid: 'arid-1',
      interval: '10000',
      attempts: '3',
      token: 'sealed',
      token_exp: String(created + 300_000),
    };
    const read = decodeRecord(legacy, pending.id);
    expect(read).toMatchObject({
      ...pending,
      status: 'authorized',
      updatedAt: created + 5,
      metadata: { order_id: 'ord_1' },
      intervalMs: 10_000,
      attempts: 3,
      sealedAccessToken: 'sealed',
      accessTokenExpiresAt: created + 300_000,
    });
    // attempts back to 0 and the interval to the default: absent new fields, and the old ones gone too
    const written = apply(legacy, { attempts: 0, intervalMs: 5000, sealedAccessToken: null, updatedAt: created + 9 });
    expect(written).not.toHaveProperty('attempts');
    expect(written).not.toHaveProperty('interval');
    expect(written).not.toHaveProperty('token');
    expect(decodeRecord(written, pending.id)).toMatchObject({
      attempts: 0,
      intervalMs: 5000,
      sealedAccessToken: null,
      updatedAt: created + 9,
    });
  });

  test('a status is stored as one letter, and a name an earlier version wrote reads the same', () => {
    const letters = PAYMENT_STATUSES.map(storedStatus);
    expect(new Set(letters).size).toBe(PAYMENT_STATUSES.length);
    for (const status of PAYMENT_STATUSES) {
      expect(storedStatus(status)).toHaveLength(1);
      expect(decodeStatus(storedStatus(status))).toBe(status);
      expect(decodeStatus(status)).toBe(status);
      expect(decodeRecord({ ...apply({}, pending, true), status }, pending.id)?.status).toBe(status);
    }
    expect(decodeStatus('x')).toBeNull();
    expect(decodeStatus(null)).toBeNull();
    expect(apply({}, { status: 'authorized' })).toEqual({ status: 'a' });
  });

  test('updated_at is stored once it differs from created_at, and read as created_at before', () => {
    const fresh = apply({}, pending, true);
    expect(decodeRecord(fresh, pending.id)?.updatedAt).toBe(created);
    const later = apply(fresh, { status: 'authorized', updatedAt: created + 7 });
    expect(later['u']).toBe(String(created + 7));
    expect(decodeRecord(later, pending.id)).toMatchObject({ status: 'authorized', updatedAt: created + 7 });
    // created in another millisecond than its record says: stored
    expect(apply({}, { ...pending, updatedAt: created + 1 }, true)['u']).toBe(String(created + 1));
  });

  test('a client secret is checked against its 22-character check value, or a whole hash written before', () => {
    const secret = 'pay_abcdefghijklmnopqrst_secret_abcdefghijklmnopqrstuvwxyz234567';
    expect(secretCheckValue(secret)).toHaveLength(22);
    expect(matchesHash(secret, secretCheckValue(secret))).toBe(true);
    expect(matchesHash(secret, sha256(secret))).toBe(true);
    expect(matchesHash(`${secret}x`, secretCheckValue(secret))).toBe(false);
    expect(matchesHash(`${secret}x`, sha256(secret))).toBe(false);
    expect(matchesHash(secret, sha256(secret).slice(0, 21))).toBe(false);
    expect(matchesHash(secret, '')).toBe(false);
  });
});
