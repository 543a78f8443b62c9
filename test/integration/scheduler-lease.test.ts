import { createLogger } from '../../src/logger.js';
import { createScheduler, type ClaimedItem } from '../../src/jobs/scheduler.js';
import { createWorkerLoop } from '../../src/jobs/worker-loop.js';
import { newPaymentId } from '../../src/payments/payment-id.js';
import { createKeys } from '../../src/store/keys.js';
import { POLL_PACE } from '../../src/store/payment-store.js';
import type { RedisClient } from '../../src/store/redis.js';
import { createTestStoreClient, deleteKeysWithPrefix } from '../support/redis.js';
import { waitFor } from '../support/api.js';
import { uniquePrefix } from '../support/system.js';

/**
 * Leases (issue 5): a worker that ran past its lease must neither drop the lease of the worker that
 * took the item over nor put a second copy of it on the due set.
 */
describe('scheduler leases', () => {
  const prefix = uniquePrefix('lease');
  const keys = createKeys(prefix);
  let redis: RedisClient;
  let now = 1_000_000;
  const clock = { now: () => now };

  beforeAll(() => {
    redis = createTestStoreClient();
  });
  afterAll(async () => {
    await redis.quit();
    await deleteKeysWithPrefix(prefix);
  });

  test('an expired lease is taken over, and the late worker cannot complete or reschedule it', async () => {
    const scheduler = createScheduler({ redis, keys, clock, leaseMs: 1000 });
    await scheduler.schedule('poll:pay_a', now);
    const a = (await scheduler.claim(10)).items[0]!;
    expect(a.member).toBe('poll:pay_a');
    expect((await scheduler.claim(10)).items).toHaveLength(0); // held

    now += 1500; // worker A hangs past its lease; B takes over
    const b = (await scheduler.claim(10)).items[0]!;
    expect(b.member).toBe('poll:pay_a');
    expect(b.leaseUntil).not.toBe(a.leaseUntil);
    expect(a.takenOver).toBeUndefined();
    expect(b.takenOver).toBe(true); // A may still be running it

    await scheduler.complete(a.member, a.leaseUntil);
    await scheduler.reschedule(a.member, now + 10, a.leaseUntil);
    expect(await redis.zscore(keys.shard(0).leases, 'poll:pay_a')).toBe(String(b.leaseUntil));
    expect(await redis.zscore(keys.dueOf('poll:pay_a').key, 'poll:pay_a')).toBeNull();

    await scheduler.reschedule(b.member, now + 10, b.leaseUntil);
    expect(await redis.zscore(keys.shard(0).leases, 'poll:pay_a')).toBeNull();
    expect(await redis.zscore(keys.dueOf('poll:pay_a').key, 'poll:pay_a')).toBe(String(now + 10));
    now += 20;
    const c = (await scheduler.claim(10)).items[0]!;
    expect(c.takenOver).toBeUndefined(); // B settled it: no takeover
    await scheduler.complete(c.member, c.leaseUntil);
    expect(await scheduler.depth()).toEqual({ due: 0, leased: 0 });
    expect(await redis.exists(keys.shard(0).takenOver)).toBe(0);
  });

  test('when a poll lease expires mid-poll with an interval longer than the lease, then the next poll is not early', async () => {
    // Security review (issue 12): CIBA Core §7.3 / slow_down forbid a poll before the interval is up.
    const scheduler = createScheduler({
      redis,
      keys,
      clock,
      leaseMs: 3000,
      prefetch: { kind: 'poll', fields: ['status'], pace: POLL_PACE },
    });
    const slow = newPaymentId(0); // slowed down to 10 s
    const plain = newPaymentId(0); // the default interval, 5 s
    await redis.hset(keys.payment(slow), { status: 'pending_authorization', [POLL_PACE.field]: '10000' });
    await redis.hset(keys.payment(plain), { status: 'pending_authorization' });
    const t0 = now;
    for (const m of [`poll:${slow}`, `poll:${plain}`, `submit:${slow}`]) await scheduler.schedule(m, t0);
    expect((await scheduler.claim(10)).items).toHaveLength(3);

    now = t0 + 3001; // the worker died: every lease has expired
    const submitAgain = await scheduler.claim(10);
    expect(submitAgain.items.map((i) => i.member)).toEqual([`submit:${slow}`]); // not paced: at once
    expect(submitAgain.nextDueAt).toBe(t0 + 5000);
    const settle = (items: ClaimedItem[]) => Promise.all(items.map((i) => scheduler.complete(i.member, i.leaseUntil)));
    await settle(submitAgain.items);
    now = t0 + 4999;
    expect((await scheduler.claim(10)).items).toEqual([]);
    now = t0 + 5000;
    const plainAgain = await scheduler.claim(10);
    expect(plainAgain.items.map((i) => i.member)).toEqual([`poll:${plain}`]);
    // Put back by an earlier claim, taken later: still known as a takeover.
    expect(plainAgain.items[0]?.takenOver).toBe(true);
    await settle(plainAgain.items);
    now = t0 + 9999;
    const early = await scheduler.claim(10);
    expect(early.items).toEqual([]);
    expect(early.nextDueAt).toBe(t0 + 10_000);
    now = t0 + 10_000;
    const slowAgain = await scheduler.claim(10);
    expect(slowAgain.items.map((i) => i.member)).toEqual([`poll:${slow}`]);
    await settle(slowAgain.items);
    expect(await scheduler.depth()).toEqual({ due: 0, leased: 0 });
    await redis.del(keys.payment(slow), keys.payment(plain));
  });

  test('when a worker renews, then its lease moves forward; once taken over, its renewal changes nothing', async () => {
    const scheduler = createScheduler({ redis, keys, clock, leaseMs: 1000 });
    await scheduler.schedule('poll:pay_r', now);
    const a = (await scheduler.claim(10)).items[0]!;
    const first = a.leaseUntil;

    now += 600;
    expect(await scheduler.renew([a])).toEqual([]);
    expect(a.leaseUntil).toBe(now + 1000);
    expect(await redis.zscore(keys.shard(0).leases, 'poll:pay_r')).toBe(String(now + 1000));
    now += 600; // past the first lease, within the renewed one: nobody else may take it
    expect(a.leaseUntil).toBeGreaterThan(first!);
    expect((await scheduler.claim(10)).items).toHaveLength(0);

    now += 1500; // renewals stopped (the worker hangs): B takes it over
    const b = (await scheduler.claim(10)).items[0]!;
    const lost = await scheduler.renew([a]);
    expect(lost).toEqual([a]);
    expect(await redis.zscore(keys.shard(0).leases, 'poll:pay_r')).toBe(String(b.leaseUntil));
    await scheduler.complete(b.member, b.leaseUntil);
    expect(await scheduler.depth()).toEqual({ due: 0, leased: 0 });
  });

  test('when a handler runs for several leases, then the loop keeps it and settles it once', async () => {
    // Time is the test's: each step moves it by two thirds of a lease, then waits for the renewal.
    const scheduler = createScheduler({ redis, keys, clock, leaseMs: 300 });
    const rival = createScheduler({ redis, keys, clock, leaseMs: 300 });
    await scheduler.schedule('slow:1', now);
    let runs = 0;
    let release = (): void => undefined;
    const loop = createWorkerLoop({
      scheduler,
      clock,
      logger: createLogger('silent'),
      concurrency: 4,
      idleMs: 20,
      renewal: { renewEveryMs: 100, maxHoldMs: 10_000 },
      handlers: {
        slow: async () => {
          runs++;
          await new Promise<void>((resolve) => (release = resolve));
          return { done: true };
        },
      },
    });
    loop.start();
    await waitFor(() => runs > 0, 5000, 'the handler to start');
    // Four leases long, a rival worker looks for expired leases and finds none.
    const leaseOf = async () => Number(await redis.zscore(keys.shard(0).leases, 'slow:1'));
    for (let step = 0; step < 6; step++) {
      now += 200;
      await waitFor(async () => (await leaseOf()) === now + 300, 5000, 'the lease to be renewed');
      expect((await rival.claim(10)).items).toHaveLength(0);
    }
    release();
    await loop.stop(2000);
    expect(runs).toBe(1);
    expect(await scheduler.depth()).toEqual({ due: 0, leased: 0 });
  });
});
