import { createLogger } from '../../src/logger.js';
import { createScheduler, type ClaimedItem, type Scheduler } from '../../src/jobs/scheduler.js';
import { WORKERS_PER_SHARD } from '../../src/jobs/shard-coverage.js';
import { newPaymentId } from '../../src/payments/payment-id.js';
import { createKeys } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/redis.js';
import { createTestStoreClient, deleteKeysWithPrefix } from '../support/redis.js';
import { waitFor } from '../support/api.js';
import { uniquePrefix } from '../support/system.js';

/**
 * Claim fan-out (issue 12.5): each worker claims from the shards rendezvous hashing over the live
 * workers gives it, and coverage changes lose nothing. Real Redis (single and cluster), the test's clock.
 */
describe('scheduler shard coverage', () => {
  const SHARDS = 8;
  const logger = createLogger('silent');
  const timing = { renewEveryMs: 20, ttlMs: 1000 };
  let now = 1_000_000;
  const clock = { now: () => now };
  const clients: RedisClient[] = [];
  const joined: Scheduler[] = [];
  let prefix = '';

  function worker(prefixOf: string, onWake = () => undefined, shards = SHARDS) {
    const redis = createTestStoreClient();
    clients.push(redis);
    const claimedFrom: string[] = [];
    const claimScript = redis.claim.bind(redis);
    redis.claim = (due, ...rest) => {
      claimedFrom.push(due);
      return claimScript(due, ...rest);
    };
    const scheduler = createScheduler({
      redis,
      keys: createKeys(prefixOf),
      clock,
      leaseMs: 1000,
      shards,
      registry: timing,
    });
    return {
      redis,
      scheduler,
      claimedFrom,
      join: async () => {
        await scheduler.joinWorkers(onWake, logger);
        joined.push(scheduler);
      },
    };
  }

  /** `perShard` poll items due now in every shard. */
  async function seed(scheduler: Scheduler, perShard: number, shards = SHARDS): Promise<string[]> {
    const members = Array.from({ length: shards * perShard }, (_, i) => `poll:${newPaymentId(i % shards)}`);
    await Promise.all(members.map((m) => scheduler.schedule(m, now)));
    return members;
  }

  beforeEach(() => {
    prefix = uniquePrefix('cover');
  });
  afterEach(async () => {
    await Promise.all(joined.splice(0).map((s) => s.leaveWorkers()));
    await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => undefined)));
    await deleteKeysWithPrefix(prefix);
  });

  test('when one of three workers dies holding leases, every item of every shard is still claimed, none twice at once', async () => {
    const [a, b, c] = [worker(prefix), worker(prefix), worker(prefix)];
    await a.scheduler.registerShards();
    for (const w of [a, b, c]) await w.join();
    const coverers = () => [a, b, c].reduce((sum, w) => sum + w.scheduler.covered().length, 0);
    await waitFor(() => coverers() === WORKERS_PER_SHARD * SHARDS, 10_000, 'each shard covered by R of 3 workers');
    const members = await seed(a.scheduler, 5);

    const heldUntil = new Map<string, number>();
    const done = new Set<string>();
    const take = (items: ClaimedItem[]) => {
      for (const item of items) {
        expect(heldUntil.get(item.member) ?? 0).toBeLessThanOrEqual(now); // nobody else holds it
        heldUntil.set(item.member, item.leaseUntil!);
      }
      return items;
    };
    // c claims first and dies with its leases: its connection closes, its registry entry is no longer renewed.
    const lost = take((await c.scheduler.claim(100)).items);
    expect(lost.length).toBeGreaterThan(0);
    await c.redis.quit();
    for (const w of [a, b]) {
      for (const item of take((await w.scheduler.claim(100)).items)) {
        await w.scheduler.complete(item.member, item.leaseUntil);
        done.add(item.member);
      }
    }
    expect(done.size).toBe(members.length - lost.length); // a and b together cover every shard

    now += 1500; // c's leases and its registry entry expire
    await waitFor(() => [a, b].every((w) => w.scheduler.covered().length === SHARDS), 10_000, 'a and b cover all');
    for (let round = 0; round < 20 && done.size < members.length; round++) {
      for (const w of [a, b]) {
        for (const item of take((await w.scheduler.claim(100)).items)) {
          await w.scheduler.complete(item.member, item.leaseUntil);
          done.add(item.member);
        }
      }
    }
    expect([...done].sort()).toEqual([...members].sort());
    expect(await a.scheduler.depth()).toEqual({ due: 0, leased: 0 });
  });

  test('a joined worker claims only from the shards it covers; the others are swept every few seconds', async () => {
    const keys = createKeys(prefix);
    // 16 shards, 4 registry entries: a covers each shard by a 1-in-2 chance (all or none: 3 in 100,000).
    const shards = 16;
    const a = worker(prefix, undefined, shards);
    const api = worker(prefix, undefined, shards); // writes the work, as an API process would
    await a.scheduler.registerShards();
    // Entries that never claim (a registry glitch): some shards are covered by them alone.
    await a.redis.zadd(keys.workers, now + 1e9, 'ghost-1', now + 1e9, 'ghost-2', now + 1e9, 'ghost-3');
    await a.join();
    const mine = a.scheduler.covered();
    expect(mine.length).toBeLessThan(shards);
    expect(mine.length).toBeGreaterThan(0);
    const orphaned = Array.from({ length: shards }, (_, k) => k).filter((k) => !mine.includes(k));

    now += 10_000;
    await a.scheduler.claim(100); // covered shards, and a first sweep of the others
    const members = await seed(api.scheduler, 2, shards);
    now += 500; // without a wake-up, a covered shard is looked at again within 500 ms
    a.claimedFrom.length = 0;
    const first = await a.scheduler.claim(100);
    expect(new Set(a.claimedFrom)).toEqual(new Set(mine.map((k) => keys.shard(k).dueDir)));
    expect(first.items).toHaveLength(mine.length * 2);
    for (const item of first.items) await a.scheduler.complete(item.member, item.leaseUntil);

    now += 5000; // the sweep comes round: the orphaned shards drain too
    a.claimedFrom.length = 0;
    const swept = await a.scheduler.claim(100);
    expect(new Set(a.claimedFrom)).toEqual(new Set([...mine, ...orphaned].map((k) => keys.shard(k).dueDir)));
    expect(swept.items.map((i) => i.member).sort()).toEqual(
      members.filter((m) => !first.items.some((i) => i.member === m)).sort(),
    );
  });

  test('a shard whose next due time is ahead is skipped until then, or until a wake-up for it', async () => {
    let wakes = 0;
    const a = worker(prefix, () => {
      wakes++;
    });
    const api = worker(prefix);
    await a.scheduler.registerShards();
    await a.join();
    const member = `poll:${newPaymentId(3)}`;
    await api.scheduler.schedule(member, now + 60_000);
    await a.scheduler.claim(100);
    a.claimedFrom.length = 0;
    expect((await a.scheduler.claim(100)).items).toEqual([]);
    expect(a.claimedFrom).toEqual([]); // nothing due anywhere: no claim call at all

    // A ping, handled by another process: due now, and the covering workers are woken for shard 3.
    expect(await api.scheduler.advance(member, now)).toBe(true);
    await api.scheduler.wake(member);
    await waitFor(() => wakes > 0, 10_000, 'the wake-up');
    // The clock stands still: only the wake-up makes the look visit shard 3 (retried, in case a nudge
    // of another cause came first).
    const woken = await waitFor(
      async () => {
        const claimed = await a.scheduler.claim(100);
        return claimed.items.length > 0 ? claimed : undefined;
      },
      10_000,
      'the woken claim',
    );
    expect(woken.items.map((i) => i.member)).toEqual([member]);
    expect(a.claimedFrom).toEqual([createKeys(prefix).shard(3).dueDir]);
  });
});
