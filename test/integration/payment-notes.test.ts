import { randomBytes } from 'node:crypto';
import { createSealer } from '../../src/crypto/sealing.js';
import { createLogger } from '../../src/logger.js';
import type { PaymentRecord } from '../../src/payments/payment.js';
import { newPaymentId } from '../../src/payments/payment-id.js';
import type { CibaClient, TokenOutcome } from '../../src/payments/ports.js';
import { createRecordTokenOutcome, type TokenAlarm } from '../../src/payments/record-token-outcome.js';
import { createStateMachine } from '../../src/payments/state-machine.js';
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
    expect(await store.recordBankCall(payment.id, clock.now())).toBe(false); // and so no bank call
    expect(await redis.exists(key)).toBe(0);
  });

  test('when a payment was deleted, then neither a note nor a bank call note creates a key', async () => {
    const id = newPaymentId(0);
    await store.update(id, { bankPaymentId: 'bank-1', attempts: 1 });
    expect(await store.recordBankCall(id, clock.now())).toBe(false);
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
