import { newClientSecret } from '../../src/crypto/random-ids.js';
import { sha256 } from '../../src/crypto/hashing.js';
import type { PaymentRecord } from '../../src/payments/payment.js';
import { newPaymentId } from '../../src/payments/payment-id.js';

/** A payment record as checkout.ts builds one, with its secret (no bank involved). */
export function newTestPayment(overrides: Partial<PaymentRecord> = {}): {
  record: PaymentRecord;
  clientSecret: string;
} {
  const id = newPaymentId(0);
  const clientSecret = newClientSecret(id);
  const now = Date.now();
  const record: PaymentRecord = {
    id,
    status: 'pending_authorization',
    amount: 1290,
    currency: 'eur',
    items: [{ sku: 'tea-01', quantity: 1, unitAmount: 1290 }],
    bindingMessage: 'K7P2-QX',
    expiresAt: now + 120_000,
    failureCode: null,
    createdAt: now,
    updatedAt: now,
    metadata: { order: '42' },
    secretHash: sha256(clientSecret),
    authReqId: 'arid-test',
    intervalMs: 5000,
    callbackUrl: null,
    sealedAccessToken: null,
    accessTokenExpiresAt: null,
    bankPaymentId: null,
    bankCalledAt: null,
    reconcileSince: null,
    heldToken: null,
    attempts: 0,
    ...overrides,
  };
  return { record, clientSecret };
}

/** A bare pending payment at `now` (a test clock's time): no items, no metadata, a dummy secret check value. */
export function pendingTestPayment(now: number, overrides: Partial<PaymentRecord> = {}): PaymentRecord {
  return newTestPayment({
    items: [],
    expiresAt: now + 60_000,
    createdAt: now,
    updatedAt: now,
    metadata: {},
    secretHash: 'h',
    authReqId: 'arid',
    bankConsentId: null,
    ...overrides,
  }).record;
}
