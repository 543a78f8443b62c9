import { createScheduler } from '../../src/jobs/scheduler.js';
import { createKeys } from '../../src/store/keys.js';
import { createRedis, type RedisClient } from '../../src/store/redis.js';
import { deleteKeysWithPrefix } from '../support/redis.js';
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
    redis = createRedis('redis://127.0.0.1:6379');
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

    await scheduler.complete(a.member, a.leaseUntil);
    await scheduler.reschedule(a.member, now + 10, a.leaseUntil);
    expect(await redis.zscore(keys.leases, 'poll:pay_a')).toBe(String(b.leaseUntil));
    expect(await redis.zscore(keys.due, 'poll:pay_a')).toBeNull();

    await scheduler.reschedule(b.member, now + 10, b.leaseUntil);
    expect(await redis.zscore(keys.leases, 'poll:pay_a')).toBeNull();
    expect(await redis.zscore(keys.due, 'poll:pay_a')).toBe(String(now + 10));
    now += 20;
    const c = (await scheduler.claim(10)).items[0]!;
    await scheduler.complete(c.member, c.leaseUntil);
    expect(await scheduler.depth()).toEqual({ due: 0, leased: 0 });
  });
});
