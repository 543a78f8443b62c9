import { randomBytes } from 'node:crypto';
import { createSealer } from '../../src/crypto/sealing.js';
import { createLogger } from '../../src/logger.js';
import type { PaymentRecord } from '../../src/payments/payment.js';
import { newPaymentId } from '../../src/payments/payment-id.js';
import {
  sealContext,
  type BankCallNote,
  type BankClient,
  type BankPaymentRequest,
  type CibaClient,
  type TokenOutcome,
} from '../../src/payments/ports.js';
import { createReconcilePayment } from '../../src/payments/reconcile-payment.js';
import { createRecordTokenOutcome, type TokenAlarm } from '../../src/payments/record-token-outcome.js';
import { createStateMachine } from '../../src/payments/state-machine.js';
import { createSubmitPayment } from '../../src/payments/submit-payment.js';
import { createKeys } from '../../src/store/keys.js';
import { createPaymentStore } from '../../src/store/payment-store.js';
import { waitFor } from '../support/api.js';
import { createTestStoreClient, deleteKeysWithPrefix } from '../support/redis.js';
import { pendingTestPayment } from '../support/payments.js';
import { captureLogs, uniquePrefix } from '../support/system.js';

/**
 * Notes a worker writes to a payment outside a transition (poll attempts, a held token, the bank call
 * time, reconciliation notes) are written only while the payment exists (security review of issue
 * 12): a late note after the hash expired used to recreate it as an orphan of a few fields and no TTL.
 */
describe('notes on a payment that is gone', () => {
  const prefix = uniquePrefix('notes');
  const redis = createTestStoreClient();
  const keys = createKeys(prefix);
  const clock = { now: () => Date.now() };
  const store = createPaymentStore({ redis, keys, retentionSeconds: 1 });
  const machine = createStateMachine({ store, clock, webhookTargets: { global: false } });

  afterAll(async () => {
    await deleteKeysWithPrefix(prefix);
    redis.disconnect();
  });

  const pending = (): PaymentRecord => pendingTestPayment(clock.now(), { id: newPaymentId(0) });

  test('when a payment exists, then a note is written; after its retention expired, a note recreates nothing', async () => {
    const payment = pending();
    const key = keys.payment(payment.id);
    expect(await machine.create(payment, { member: `poll:${payment.id}`, at: clock.now() + 60_000 })).toBe('ok');
    await store.update(payment.id, { attempts: 2, heldToken: 'sealed' });
    expect((await store.get(payment.id))?.attempts).toBe(2);
    expect((await store.get(payment.id))?.heldToken).toBe('sealed');
    await store.update(payment.id, { heldToken: null });
    expect((await store.get(payment.id))?.heldToken).toBeNull();

    // It ends and its retention (1 s here) runs out: Redis removes the hash.
    expect(await machine.transition({ ...payment, attempts: 2 }, 'failed', { failureCode: 'expired' })).toBe('ok');
    await waitFor(async () => (await redis.exists(key)) === 0, 5000, 'the retention to expire the payment');

    // A worker that still had the payment in hand writes its notes late.
    await store.update(payment.id, { attempts: 3 });
    await store.update(payment.id, { heldToken: 'sealed-token-response', attempts: 1 });
    await store.update(payment.id, { reconcileSince: clock.now(), attempts: 0 });
    expect(await store.recordBankCall(payment.id, clock.now())).toBe('not_processing'); // and so no bank call
    expect(await redis.exists(key)).toBe(0);
  });

  test('when a payment was deleted, then neither a note nor a bank call note creates a key', async () => {
    const id = newPaymentId(0);
    await store.update(id, { bankPaymentId: 'bank-1', attempts: 1 });
    expect(await store.recordBankCall(id, clock.now())).toBe('not_processing');
    expect(await redis.exists(keys.payment(id))).toBe(0);
  });

  /**
   * The token step, on this store, with a bank whose token endpoint hands out a token whose ID token
   * cannot be checked (its keys are down: `unverified`) after `meanwhile` ran, as if during the request.
   */
  function tokenStepWithKeysDown(meanwhile: () => Promise<unknown>) {
    const alarms: TokenAlarm[] = [];
    const logs = captureLogs();
    const unverified: TokenOutcome = {
      kind: 'unverified',
      response: { accessToken: 'at', idToken: 'it', expiresIn: 300, receivedAt: clock.now() },
      reason: 'jwks unavailable',
    };
    const ciba = {
      requestToken: async () => {
        await meanwhile();
        return unverified;
      },
    } as unknown as CibaClient;
    const step = createRecordTokenOutcome({
      store,
      stateMachine: machine,
      ciba,
      sealer: createSealer([randomBytes(32)]),
      clock,
      logger: createLogger('info', logs.stream),
      merchant: { name: 'Demo Tea Shop', iban: 'DE89370400440532013000' },
      deliveryMode: 'poll',
      onAlarm: (alarm) => alarms.push(alarm),
      takeoverGraceMs: 1000,
    });
    return { step, alarms, logs: logs.lines };
  }

  test('when a token is held while the bank keys are down, then it is kept on the pending payment', async () => {
    const payment = pending();
    expect(await machine.create(payment, { member: `poll:${payment.id}`, at: clock.now() })).toBe('ok');
    const { step, alarms } = tokenStepWithKeysDown(() => Promise.resolve());

    expect('at' in (await step(payment.id))).toBe(true); // validated again later
    expect((await store.get(payment.id))?.heldToken).toEqual(expect.any(String));
    expect(alarms).toEqual(['bank_keys_unavailable']);
  });

  test('when the payment failed while the token was on its way, then no token is held on it and token_after_failure is raised', async () => {
    const payment = pending();
    expect(await machine.create(payment, { member: `poll:${payment.id}`, at: clock.now() })).toBe('ok');
    // Another worker's grace ran out while this one waited on the bank.
    const failIt = () => machine.transition(payment, 'failed', { failureCode: 'authorization_error' });
    const { step, alarms, logs } = tokenStepWithKeysDown(failIt);

    expect(await step(payment.id)).toEqual({ done: true }); // no poll comes back for it
    const after = await store.get(payment.id);
    expect(after?.status).toBe('failed');
    expect(after?.heldToken).toBeNull(); // before: the sealed token response, at rest on a failed payment
    expect(alarms).toEqual(['bank_keys_unavailable', 'token_after_failure']); // before: no token_after_failure
    expect(logs.some((l) => l.includes('a token arrived for a payment already failed'))).toBe(true);
  });

  test('when the payment was canceled while the token was on its way, then no token is held on it, without an alarm', async () => {
    const payment = pending();
    expect(await machine.create(payment, { member: `poll:${payment.id}`, at: clock.now() })).toBe('ok');
    const { step, alarms } = tokenStepWithKeysDown(() => machine.transition(payment, 'canceled'));

    expect(await step(payment.id)).toEqual({ done: true });
    expect((await store.get(payment.id))?.heldToken).toBeNull();
    expect(alarms).toEqual(['bank_keys_unavailable']); // the shop canceled it: nothing for an operator
  });
});

/**
 * A worker whose submit lease was taken over can still be on its way to the bank while reconciliation
 * settles the payment (review of the session's changes, L2). Its bank call note is written only while
 * the payment is `processing`, and reconciliation fails a payment only if no call was noted since it
 * read it: else money could move on a payment reported `failed`.
 */
describe('a bank call noted by a worker whose lease was taken over', () => {
  const prefix = uniquePrefix('fence');
  const redis = createTestStoreClient();
  const keys = createKeys(prefix);
  let now = Date.now();
  const clock = { now: () => now };
  const store = createPaymentStore({ redis, keys, retentionSeconds: 60 });
  const machine = createStateMachine({ store, clock, webhookTargets: { global: false } });
  const sealer = createSealer([randomBytes(32)]);
  const graceMs = 10_000;

  afterAll(async () => {
    await deleteKeysWithPrefix(prefix);
    redis.disconnect();
  });

  /** A payment in `processing` with a usable access token, as a submit finds it. */
  async function processing(): Promise<PaymentRecord> {
    const payment = pendingTestPayment(now, { id: newPaymentId(0) });
    expect(await machine.create(payment, { member: `poll:${payment.id}`, at: now + 60_000 })).toBe('ok');
    const token = {
      sealedAccessToken: sealer.seal('at', sealContext(payment.id, 'token')),
      accessTokenExpiresAt: now + 300_000,
    };
    expect(await machine.transition(payment, 'authorized', { fields: token })).toBe('ok');
    expect(await machine.transition({ ...payment, ...token, status: 'authorized' }, 'processing')).toBe('ok');
    return (await store.get(payment.id))!;
  }

  function submitter(bankCalls: BankPaymentRequest[], storeSeen = store) {
    const bank = {
      createPayment: (request: BankPaymentRequest) => {
        bankCalls.push(request);
        return Promise.resolve({ kind: 'accepted', bankPaymentId: 'bank-1' } as const);
      },
    } as unknown as BankClient;
    return createSubmitPayment({
      store: storeSeen,
      stateMachine: machine,
      bank,
      sealer,
      clock,
      logger: createLogger('silent'),
      merchant: { name: 'Demo Tea Shop', iban: 'DE89370400440532013000' },
      reconcile: () => Promise.reject(new Error('no reconciliation expected')),
    });
  }

  /** Reconciliation against `bank`'s lookup (the payment port only: the lookup's timing is what is tested). */
  function reconciler(bank: BankClient) {
    const logger = createLogger('silent');
    return createReconcilePayment({ store, stateMachine: machine, bank, clock, logger, inFlightGraceMs: graceMs });
  }

  test('when reconciliation failed the payment after the stale worker read it, then its note is refused and the bank is not called', async () => {
    const payment = await processing();
    // The stale worker reads the payment; reconciliation (another worker) then settles it as failed.
    const readThenFailed = {
      ...store,
      get: async (id: string) => {
        const record = await store.get(id);
        expect(await machine.transition(record!, 'failed', { failureCode: 'bank_rejected' })).toBe('ok');
        return record;
      },
    };
    const bankCalls: BankPaymentRequest[] = [];

    expect(await submitter(bankCalls, readThenFailed)(payment.id)).toEqual({ done: true });
    expect(bankCalls).toEqual([]); // before: the bank was called for a payment reported failed
    const after = await store.get(payment.id);
    expect(after).toMatchObject({ status: 'failed', bankCalledAt: null }); // before: bank_at written on it
    expect(await store.recordBankCall(payment.id, now)).toBe('not_processing');
  });

  test('when a stale worker notes a bank call during the lookup, then reconciliation does not fail the payment and looks again after that call', async () => {
    const stale = await processing();
    expect(await store.recordBankCall(stale.id, now)).toBe('noted'); // the first call, unanswered
    await store.update(stale.id, { reconcileSince: now });
    now += graceMs + 1; // its grace has passed: the lookup is believed
    const read = (await store.get(stale.id))!;
    let noted: BankCallNote | null = null;
    let calledAt = 0;
    const bank = {
      // While the lookup is on its way, the stale worker notes its call (and then calls the bank).
      findPayment: async () => {
        calledAt = now;
        noted = await store.recordBankCall(stale.id, calledAt);
        return { kind: 'found', payments: [] } as const;
      },
    } as unknown as BankClient;
    const reconcile = reconciler(bank);

    expect(await reconcile(read)).toEqual({ at: calledAt + graceMs }); // before: { done: true }
    expect(noted).toBe('noted');
    expect((await store.get(stale.id))?.status).toBe('processing'); // before: failed, with a call on its way
  });

  test('when no call was noted during the lookup, then nothing booked fails the payment', async () => {
    const payment = await processing();
    expect(await store.recordBankCall(payment.id, now)).toBe('noted');
    await store.update(payment.id, { reconcileSince: now });
    now += graceMs + 1;
    const bank = { findPayment: () => Promise.resolve({ kind: 'found', payments: [] }) } as unknown as BankClient;
    const reconcile = reconciler(bank);

    expect(await reconcile((await store.get(payment.id))!)).toEqual({ done: true });
    expect(await store.get(payment.id)).toMatchObject({ status: 'failed', failureCode: 'bank_rejected' });
  });
});
