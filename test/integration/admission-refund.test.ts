import { AppError } from '../../src/errors.js';
import { createCheckoutAdmission, type AdmissionLimits } from '../../src/store/checkout-admission.js';
import { createKeys } from '../../src/store/keys.js';
import { createTestStoreClient, deleteKeysWithPrefix } from '../support/redis.js';
import { uniquePrefix } from '../support/system.js';

/**
 * A checkout the store refused before the bank was asked (503 store_unavailable: a claim note short
 * of replicas, the store away) gives back the limit points it took, so a shop retrying through the
 * outage is not left rate limited for the hour; one that reached the bank keeps them (push bombing,
 * issue 11.6). Real Redis, through the admission's own limiters.
 */
describe('admission points of a checkout that never reached the bank', () => {
  const prefix = uniquePrefix('refund');
  const redis = createTestStoreClient();
  const limits: AdmissionLimits = {
    checkoutPerMinute: 2,
    loginHintPerMinute: 2,
    loginHintPerHour: 0,
    loginHintPerDay: 0,
    maxPendingPerLoginHint: 0,
    denialCooldownSeconds: 0,
    denialCooldownMaxSeconds: 0,
  };

  beforeAll(async () => {
    await redis.ping(); // the limiters refuse a client that is not ready yet
  });

  afterAll(async () => {
    redis.disconnect();
    await deleteKeysWithPrefix(prefix);
  });

  const admissionWith = (overrides: Partial<AdmissionLimits>) =>
    createCheckoutAdmission({
      redis,
      keys: createKeys(`${prefix}${String(Math.random()).slice(2)}:`),
      clock: { now: () => Date.now() },
      readPayment: () => Promise.resolve(null),
      limits: { ...limits, ...overrides },
      holdMs: 30_000,
    });
  const customer = { clientAddress: '192.0.2.7', customerKey: 'user' };

  test.each([
    ['without pending tracking', {}],
    ['with a pending place per customer', { maxPendingPerLoginHint: 1 }],
  ])('%s: refunded tries never run out, tries that reached the bank do', async (_name, overrides) => {
    const admission = admissionWith(overrides);
    for (let i = 0; i < 5; i++) await (await admission.admit(customer)).refund();

    // Before: the third try was refused 429 although no request had reached the bank.
    for (let i = 0; i < 2; i++) await (await admission.admit(customer)).release(); // these reached the bank
    const refused = await admission.admit(customer).then(
      () => null,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(AppError);
    expect((refused as AppError).code).toBe('rate_limited');
  });
});
