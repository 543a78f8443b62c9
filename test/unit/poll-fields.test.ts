import { newTestPayment } from '../support/payments.js';
import { encodeFields } from '../../src/store/payment-hash.js';
import { decodePollFields, POLL_FIELDS } from '../../src/store/payment-store.js';

/** The poll fields the claim script reads (scheduler prefetch), decoded without a second read when they suffice. */
describe('poll fields as the claim reads them', () => {
  const valuesOf = (hash: Record<string, string>) => POLL_FIELDS.map((f) => hash[f] ?? null);
  const pendingWith = (authReqId: string) =>
    encodeFields(newTestPayment({ authReqId, expiresAt: 2_000_000, intervalMs: 5000 }).record, { fresh: true }).set;

  test('when the auth_req_id fits one field, then the fields decode as the payment has them', () => {
    expect(decodePollFields(valuesOf(pendingWith('ar_short')))).toMatchObject({
      status: 'pending_authorization',
      authReqId: 'ar_short',
      intervalMs: 5000,
      expiresAt: 2_000_000,
      attempts: 0,
      heldToken: null,
    });
  });

  test('when the auth_req_id is stored in parts, then they do not suffice (the poll reads the whole payment)', () => {
    expect(decodePollFields(valuesOf(pendingWith('x'.repeat(500))))).toBeNull();
  });

  test('when the hash is gone, then the poll finds no payment; when an earlier version wrote it, it reads it whole', () => {
    expect(decodePollFields(valuesOf({}))).toBeNull(); // gone, or not yet on this node: read it whole
    expect(decodePollFields(['pending_authorization', 'ar_1', null, '5000', null])).toBeNull();
  });

  test('when a taken-over poll noted the spent grant, then the poll reads it back with its deadline and code', () => {
    const spentGrant = { failureCode: 'authorization_error' as const, failAt: 1_764_500_000_123 };
    const { set } = encodeFields(
      { ...newTestPayment({ authReqId: 'ar_1', expiresAt: 2_000_000 }).record, spentGrant },
      {
        fresh: true,
      },
    );
    expect(Buffer.byteLength(set.S ?? '')).toBeLessThanOrEqual(64); // the hash stays compact
    expect(decodePollFields(valuesOf(set))?.spentGrant).toEqual(spentGrant);
    expect(decodePollFields(valuesOf(pendingWith('ar_1')))?.spentGrant).toBeNull();
  });
});
