import { AppError } from '../../src/errors.js';
import { PaymentIdTakenError } from '../../src/payments/checkout.js';
import { claimKey, runOnce, type Checkout, type ClaimedRunDeps } from '../../src/payments/claimed-run.js';
import type {
  ClaimRef,
  IdempotencyClaim,
  IdempotencyStore,
  NotedPayment,
  StoredResponse,
} from '../../src/payments/idempotency.js';
import type { PaymentRecord } from '../../src/payments/payment.js';
import { waitFor } from '../support/api.js';
import { newTestPayment } from '../support/payments.js';

/** What the use case did with its claim: the decisions only (the scripts are tested on real Redis). */
function recordingDeps(found: () => Promise<PaymentRecord | null>, claimed: IdempotencyClaim = { state: 'new' }) {
  const ends: string[] = [];
  const idempotency: IdempotencyStore = {
    claim: () => Promise.resolve(claimed),
    note: (_c: ClaimRef, p: NotedPayment) => {
      ends.push(`note ${p.paymentId}`);
      return Promise.resolve(true);
    },
    complete: (_c: ClaimRef, r: StoredResponse) => {
      ends.push(`complete ${String(r.status)}`);
      return Promise.resolve(true);
    },
    release: () => {
      ends.push('release');
      return Promise.resolve(true);
    },
  };
  const deps: ClaimedRunDeps = {
    idempotency,
    payments: { voidUnlessCreated: found },
    renderProblem: (err) => JSON.stringify({ code: err.code }),
    holdMs: 60_000,
  };
  return { deps, ends };
}

const claim = { scope: 'shop', key: 'k', owner: 'o' };
const storeFault = () => new Error('Connection is closed.');

describe('a claimed checkout (claimed-run.ts)', () => {
  test('when the store fails before the bank is asked, then the key is freed and the fault answered', async () => {
    const { deps, ends } = recordingDeps(() => Promise.reject(new Error('not asked')));
    await expect(runOnce(deps, claim, () => Promise.reject(storeFault()))).rejects.toThrow('Connection is closed.');
    expect(ends).toEqual(['release']);
  });

  test('when the store refuses before the bank is asked, then the place and the limit points are given back', async () => {
    const { deps } = recordingDeps(() => Promise.reject(new Error('not asked')));
    const outcomes: string[] = [];
    const outcome = {
      created: () => Promise.resolve(void outcomes.push('created')),
      none: () => Promise.resolve(void outcomes.push('none')),
      bankNotAsked: () => Promise.resolve(void outcomes.push('bank not asked')),
    };
    await expect(runOnce(deps, claim, () => Promise.reject(storeFault()), outcome)).rejects.toThrow('closed');
    const refusal = new AppError('unknown_bank_user', 'The bank does not know this customer.');
    const { record, clientSecret } = newTestPayment();
    const refusedByBank: Checkout = async ({ beforeBank }) => {
      await beforeBank({ paymentId: record.id, clientSecret });
      throw refusal;
    };
    await expect(runOnce(deps, claim, refusedByBank, outcome)).rejects.toBe(refusal);
    expect(outcomes).toEqual(['bank not asked', 'none']);
  });

  test('when a limit refuses before the bank is asked, then the key is freed, not kept with the refusal', async () => {
    const { deps, ends } = recordingDeps(() => Promise.reject(new Error('not asked')));
    const pending = new AppError('checkout_pending', 'A request for this customer is already pending.');
    await expect(runOnce(deps, claim, () => Promise.reject(pending))).rejects.toBe(pending);
    expect(ends).toEqual(['release']);
  });

  test('when our own create, sent again, finds its id taken and the store cannot tell yet, then 503, not an internal error', async () => {
    const { record, clientSecret } = newTestPayment();
    const { deps } = recordingDeps(() => Promise.reject(storeFault()));
    for (const key of [claim, null]) {
      const answer = runOnce(deps, key, async ({ beforeBank, beforeCreate }) => {
        await beforeBank({ paymentId: record.id, clientSecret });
        beforeCreate();
        throw new PaymentIdTakenError(record.id, 'exists');
      });
      await expect(answer).rejects.toMatchObject({ code: 'store_unavailable', status: 503 });
    }
  });

  test('when the create ran but its reply was lost, then the answer is that payment, stored, and the key never freed', async () => {
    const { record, clientSecret } = newTestPayment();
    const { deps, ends } = recordingDeps(() => Promise.resolve(record));
    const answer = await runOnce(deps, claim, async ({ beforeBank, beforeCreate }) => {
      await beforeBank({ paymentId: record.id, clientSecret });
      beforeCreate();
      throw storeFault();
    });
    expect(answer.status).toBe(202);
    expect(JSON.parse(answer.body)).toMatchObject({ id: record.id, client_secret: clientSecret });
    expect(ends).toEqual([`note ${record.id}`, 'complete 202']);
  });

  test('when the store cannot tell whether the payment exists, then the key is kept until it can, then settled', async () => {
    const { record, clientSecret } = newTestPayment();
    let tries = 0;
    const { deps, ends } = recordingDeps(() => (++tries < 3 ? Promise.reject(storeFault()) : Promise.resolve(null)));
    await expect(
      runOnce(deps, claim, async ({ beforeBank, beforeCreate }) => {
        await beforeBank({ paymentId: record.id, clientSecret });
        beforeCreate();
        throw storeFault();
      }),
    ).rejects.toThrow('Connection is closed.');
    expect(ends).toEqual([`note ${record.id}`]);
    // Voided at the third try: only then is the key freed.
    await waitFor(() => ends.length > 1, 5000, 'the background settling');
    expect(ends).toEqual([`note ${record.id}`, 'release']);
  });

  test('when the store can tell only later that the payment exists, then the place held for it is kept for it, never given back', async () => {
    const { record, clientSecret } = newTestPayment();
    let tries = 0;
    const { deps, ends } = recordingDeps(() => (++tries < 2 ? Promise.reject(storeFault()) : Promise.resolve(record)));
    const outcome = {
      created: (p: { id: string }) => Promise.resolve(void ends.push(`place kept for ${p.id}`)),
      none: () => Promise.resolve(void ends.push('place given back')),
      bankNotAsked: () => Promise.resolve(void ends.push('place and points given back')),
    };
    const checkout: Checkout = async ({ beforeBank, beforeCreate }) => {
      await beforeBank({ paymentId: record.id, clientSecret });
      beforeCreate();
      throw storeFault();
    };
    await expect(runOnce(deps, claim, checkout, outcome)).rejects.toThrow('Connection is closed.');
    await waitFor(() => ends.length > 1, 5000, 'the background settling');
    expect(ends).toEqual([`note ${record.id}`, `place kept for ${record.id}`, 'complete 202']);
  });

  test('when the bank refused after the id was noted, then the refusal is stored and nothing is voided (no create was sent)', async () => {
    const { record, clientSecret } = newTestPayment();
    const { deps, ends } = recordingDeps(() => Promise.reject(new Error('voided a payment never sent')));
    const refusal = new AppError('unknown_bank_user', 'The bank does not know this customer.');
    await expect(
      runOnce(deps, claim, async ({ beforeBank }) => {
        await beforeBank({ paymentId: record.id, clientSecret });
        throw refusal;
      }),
    ).rejects.toBe(refusal);
    expect(ends).toEqual([`note ${record.id}`, `complete ${String(refusal.status)}`]);
  });

  test('when the bank is down after the id was noted, then the key is freed at once and nothing is voided', async () => {
    const { record, clientSecret } = newTestPayment();
    const { deps, ends } = recordingDeps(() => Promise.reject(new Error('voided a payment never sent')));
    const down = new AppError('bank_unavailable', 'The bank is unavailable.', { retryAfterSeconds: 2 });
    await expect(
      runOnce(deps, claim, async ({ beforeBank }) => {
        await beforeBank({ paymentId: record.id, clientSecret });
        throw down;
      }),
    ).rejects.toBe(down);
    expect(ends).toEqual([`note ${record.id}`, 'release']);
  });

  test('when a retry takes over a noted claim whose payment exists, then it answers that payment and stores it', async () => {
    const { record, clientSecret } = newTestPayment();
    const noted = { paymentId: record.id, clientSecret };
    const { deps, ends } = recordingDeps(() => Promise.resolve(record), { state: 'unsettled', noted });
    const answer = await claimKey(deps, claim, 'print');
    expect(answer?.location).toBe(`/payments/${record.id}`);
    expect(JSON.parse(answer?.body ?? '{}')).toMatchObject({ id: record.id, client_secret: clientSecret });
    expect(ends).toEqual(['complete 202']);
  });

  test('when a retry takes over a noted claim whose payment never came, then it runs afresh under the claim', async () => {
    const { record, clientSecret } = newTestPayment();
    const noted = { paymentId: record.id, clientSecret };
    const { deps, ends } = recordingDeps(() => Promise.resolve(null), { state: 'unsettled', noted });
    expect(await claimKey(deps, claim, 'print')).toBeNull();
    expect(ends).toEqual([]);
  });
});
