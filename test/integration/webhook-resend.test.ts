import { AppError } from '../../src/errors.js';
import { createScheduler } from '../../src/jobs/scheduler.js';
import { decodeEventLog } from '../../src/payments/event-log.js';
import { newPaymentId } from '../../src/payments/payment-id.js';
import { createStateMachine } from '../../src/payments/state-machine.js';
import { workItem } from '../../src/payments/work-items.js';
import { createKeys } from '../../src/store/keys.js';
import { createPaymentStore } from '../../src/store/payment-store.js';
import { createDeliveryStore, deliveryIdFor, type DeliveryRecord } from '../../src/webhooks/delivery-store.js';
import { resendDelivery } from '../../src/webhooks/resend.js';
import { createTestStoreClient, deleteKeysWithPrefix } from '../support/redis.js';
import { pendingTestPayment } from '../support/payments.js';
import { uniquePrefix } from '../support/system.js';

/**
 * A resend (POST /webhooks/deliveries/{id}/resend) restarts a delivery only when it can schedule it:
 * an attempt claimed in flight is answered 409 delivery_in_progress, and that answer changes
 * nothing, not the in-flight attempt's record either (review of the session's changes, L3).
 */
describe('webhook resend', () => {
  const prefix = uniquePrefix('resend');
  const redis = createTestStoreClient();
  const keys = createKeys(prefix);
  const clock = { now: () => Date.now() };
  const store = createPaymentStore({ redis, keys, retentionSeconds: 60 });
  const machine = createStateMachine({ store, clock, webhookTargets: { global: true } });
  const deliveries = createDeliveryStore({ redis, keys, retentionSeconds: 60 });
  const scheduler = createScheduler({ redis, keys, clock, leaseMs: 5000 });

  afterAll(async () => {
    await deleteKeysWithPrefix(prefix);
    redis.disconnect();
  });

  /** A payment whose first event's delivery to WEBHOOK_URL gave up; its hook item is due (not leased). */
  async function givenUpDelivery(): Promise<{ record: DeliveryRecord; member: string }> {
    const payment = pendingTestPayment(clock.now(), { id: newPaymentId(0) });
    expect(await machine.create(payment, { member: workItem.poll(payment.id), at: clock.now() + 60_000 })).toBe('ok');
    const [event] = decodeEventLog(await redis.hgetall(keys.payment(payment.id)), payment.id);
    const eventId = event?.eventId ?? '';
    const now = clock.now();
    const record: DeliveryRecord = {
      id: deliveryIdFor(eventId, 'g'),
      eventId,
      eventType: 'payment.pending_authorization',
      paymentId: payment.id,
      target: 'g',
      url: 'https://shop.example/hook',
      state: 'failed',
      attempts: 8,
      roundAttempts: 8,
      roundStartedAt: now - 86_400_000,
      lastStatus: 500,
      lastError: null,
      nextAttemptAt: null,
      createdAt: now - 86_400_000,
      updatedAt: now - 1000,
      deliveredAt: null,
      history: [],
    };
    await deliveries.save(record);
    return { record, member: workItem.hook(payment.id, 1, 'g') };
  }

  test('when an attempt is claimed between the look and the schedule, then 409 and the delivery record is unchanged', async () => {
    const { record, member } = await givenUpDelivery();
    // A worker claims the hook item right after the resend looked for its lease.
    const claimedAfterLook = new Proxy(redis, {
      get(target, name, receiver) {
        const value: unknown = Reflect.get(target, name, receiver);
        if (name === 'zscore')
          return async (key: string, m: string) => {
            const lease = await target.zscore(key, m);
            expect((await scheduler.claim(10)).items.map((i) => i.member)).toEqual([member]);
            return lease;
          };
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });

    const answer = await resendDelivery(
      { redis: claimedAfterLook, keys, deliveries, scheduler, clock },
      record.id,
    ).then(
      () => null,
      (err: unknown) => err,
    );
    expect(answer).toBeInstanceOf(AppError);
    expect((answer as AppError).code).toBe('delivery_in_progress');
    expect(await deliveries.get(record.id)).toEqual(record); // before: restarted (pending, counters reset)
  });

  test('when no attempt is in flight, then the delivery restarts and is due now', async () => {
    const { record, member } = await givenUpDelivery();
    // Its last attempt is over: the item is neither waiting nor leased.
    const [attempt] = (await scheduler.claim(10)).items;
    await scheduler.complete(member, attempt?.leaseUntil);

    const restarted = await resendDelivery({ redis, keys, deliveries, scheduler, clock }, record.id);
    expect(restarted).toMatchObject({ state: 'pending', roundAttempts: 0, attempts: 8 });
    expect(await deliveries.get(record.id)).toEqual(restarted);
    expect((await scheduler.claim(10)).items.map((i) => i.member)).toEqual([member]);
  });
});
