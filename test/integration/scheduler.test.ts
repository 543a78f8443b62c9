import { Redis } from 'ioredis';
import { createServer, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/logger.js';
import { createScheduler, type ClaimedItem } from '../../src/jobs/scheduler.js';
import { createWorkerLoop, type HandlerResult } from '../../src/jobs/worker-loop.js';
import { newPaymentId } from '../../src/payments/payment-id.js';
import { createStateMachine } from '../../src/payments/state-machine.js';
import { createKeys } from '../../src/store/keys.js';
import { createPaymentStore } from '../../src/store/payment-store.js';
import { createShardSubscriber } from '../../src/store/shard-subscriber.js';
import { createTestStoreClient, deleteKeysWithPrefix } from '../support/redis.js';
import { waitFor } from '../support/api.js';
import { clearDue, dueEntries } from '../support/due-work.js';
import { pendingTestPayment } from '../support/payments.js';
import { uniquePrefix } from '../support/system.js';

/** The durable scheduler on real Redis: claims, leases, take-over after a worker dies. */
describe('scheduler', () => {
  const prefix = uniquePrefix('sched');
  const redis = createTestStoreClient();
  const keys = createKeys(prefix);
  let now = 1_000_000;
  const clock = { now: () => now };
  const scheduler = createScheduler({ redis, keys, clock, leaseMs: 5000 });

  afterAll(async () => {
    await deleteKeysWithPrefix(prefix);
    redis.disconnect();
  });
  beforeEach(async () => {
    await clearDue(redis, keys.shard(0));
    await redis.del(keys.shard(0).leases, keys.shard(0).pinged);
  });

  test('when the wake-up channels never answer at start-up, then the worker joins within the bound, says so once, and claims', async () => {
    // A node that takes connections but never answers: the subscriber copy (no command timeout) waits forever.
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const client = createTestStoreClient();
    const copies: Redis[] = [];
    (client as unknown as { duplicate: () => Redis }).duplicate = () => {
      const copy = new Redis(port, '127.0.0.1', { enableReadyCheck: false, lazyConnect: false });
      copy.on('error', () => undefined);
      copies.push(copy);
      return copy;
    };
    const lines: string[] = [];
    const out = new PassThrough().on('data', (chunk: Buffer) => lines.push(String(chunk)));
    const worker = createScheduler({ redis: client, keys, clock, leaseMs: 5000, followTimeoutMs: 300 });
    let bound: NodeJS.Timeout | undefined;
    try {
      const joined = worker.joinWorkers(() => undefined, createLogger('info', out)).then(() => 'joined');
      const hung = new Promise(
        (resolve) =>
          (bound = setTimeout(() => {
            resolve('hung');
          }, 10_000)),
      );
      expect(await Promise.race([joined, hung])).toBe('joined');
      expect(copies.length).toBeGreaterThan(0);
      expect(lines.filter((l) => l.includes('wake-up channels'))).toHaveLength(1);
      await worker.schedule('poll:after-silence', now);
      expect((await worker.claim(10)).items.map((i) => i.member)).toContain('poll:after-silence');
    } finally {
      clearTimeout(bound);
      await worker.leaveWorkers();
      for (const copy of copies) copy.disconnect();
      for (const socket of sockets) socket.destroy();
      silent.close();
      client.disconnect();
    }
  });

  test('when work is due, then it is claimed once, in due order, and leased', async () => {
    await scheduler.schedule('poll:b', now - 10);
    await scheduler.schedule('poll:a', now - 20);
    await scheduler.schedule('poll:later', now + 1000);
    const first = await scheduler.claim(10);
    expect(first.items).toMatchObject([
      { member: 'poll:a', dueAt: now - 20 },
      { member: 'poll:b', dueAt: now - 10 },
    ]);
    expect(first.nextDueAt).toBe(now + 1000);
    expect((await scheduler.claim(10)).items).toEqual([]);
    expect(await redis.zscore(keys.shard(0).leases, 'poll:a')).toBe(String(now + 5000));
    expect(await redis.zscore(keys.dueOf('poll:a').key, 'poll:a')).toBeNull();
  });

  test('when a claim has a limit, then the rest stays due for the next claim', async () => {
    for (let i = 0; i < 5; i++) await scheduler.schedule(`poll:${i}`, now - i);
    expect((await scheduler.claim(2)).items).toHaveLength(2);
    expect((await scheduler.claim(10)).items).toHaveLength(3);
  });

  test('when a worker dies holding a lease, then the work is claimed again after the lease expires', async () => {
    await scheduler.schedule('submit:x', now);
    expect((await scheduler.claim(1)).items).toHaveLength(1);
    now += 4000;
    expect((await scheduler.claim(1)).items).toHaveLength(0);
    now += 1001;
    const again = await scheduler.claim(1);
    expect(again.items.map((i) => i.member)).toEqual(['submit:x']);
  });

  test('when a worker settles work after its lease was taken over, then nothing of the new holder is touched', async () => {
    await scheduler.schedule('poll:f', now);
    const [mine] = (await scheduler.claim(1)).items;
    now += 5001;
    const [theirs] = (await scheduler.claim(1)).items;
    expect(theirs?.member).toBe('poll:f');
    await scheduler.complete('poll:f', mine!.leaseUntil);
    await scheduler.reschedule('poll:f', now + 1, mine!.leaseUntil);
    expect(await redis.zscore(keys.shard(0).leases, 'poll:f')).toBe(String(theirs!.leaseUntil));
    expect(await redis.zscore(keys.dueOf('poll:f').key, 'poll:f')).toBeNull();
  });

  test('when work is rescheduled or completed, then its lease is gone', async () => {
    await scheduler.schedule('poll:r', now);
    await scheduler.claim(1);
    await scheduler.reschedule('poll:r', now + 5000);
    expect(await redis.zscore(keys.shard(0).leases, 'poll:r')).toBeNull();
    expect(await redis.zscore(keys.dueOf('poll:r').key, 'poll:r')).toBe(String(now + 5000));
    now += 5000;
    await scheduler.claim(1);
    await scheduler.complete('poll:r');
    expect(await redis.zcard(keys.shard(0).leases)).toBe(0);
    expect((await scheduler.depth()).due).toBe(0);
  });

  test('when a ping advances a waiting poll, then it moves earlier only, and leased work is not copied', async () => {
    await scheduler.schedule('poll:p', now + 30_000);
    expect(await scheduler.advance('poll:p', now)).toBe(true);
    expect(await redis.zscore(keys.dueOf('poll:p').key, 'poll:p')).toBe(String(now));
    expect(await scheduler.advance('poll:p', now + 10)).toBe(false);
    const { items } = await scheduler.claim(1);
    // leased (its poll in flight): not copied, but marked, so that handing it back makes it due at once
    expect(await scheduler.advance('poll:p', now)).toBe(true);
    expect(await redis.zscore(keys.dueOf('poll:p').key, 'poll:p')).toBeNull();
    await scheduler.reschedule('poll:p', now + 30_000, items[0]!.leaseUntil);
    expect(await redis.zscore(keys.dueOf('poll:p').key, 'poll:p')).toBe(String(now));
    // the mark is used once
    const again = await scheduler.claim(1);
    await scheduler.reschedule('poll:p', now + 30_000, again.items[0]!.leaseUntil);
    expect(await redis.zscore(keys.dueOf('poll:p').key, 'poll:p')).toBe(String(now + 30_000));
    // neither waiting nor leased: nothing to do
    expect(await scheduler.advance('poll:gone', now)).toBe(false);
    expect(await redis.zscore(keys.dueOf('poll:gone').key, 'poll:gone')).toBeNull();
  });

  test('when a ping moves waiting work earlier, then the same step wakes its shard; a marked lease or a no-op does not', async () => {
    const wakes: number[] = [];
    const sub = createShardSubscriber({
      redis,
      channelOf: (shard) => keys.shard(shard).wake,
      onMessage: (shard) => wakes.push(shard),
      logger: createLogger('silent'),
    });
    try {
      await sub.follow([0]);
      await scheduler.schedule('poll:w', now + 30_000);
      expect(await scheduler.advance('poll:w', now)).toBe(true);
      await waitFor(() => wakes.length === 1);
      expect(await scheduler.advance('poll:w', now + 10)).toBe(false); // not earlier: no wake-up
      await scheduler.claim(1);
      expect(await scheduler.advance('poll:w', now)).toBe(true); // leased: marked, its holder looks again
      expect(await scheduler.advance('poll:none', now)).toBe(false);
      // A later wake-up proves the channel still delivers, so the absent ones were never sent.
      await scheduler.schedule('poll:w2', now + 30_000);
      expect(await scheduler.advance('poll:w2', now)).toBe(true);
      await waitFor(() => wakes.length >= 2);
      expect(wakes).toEqual([0, 0]);
    } finally {
      sub.close();
    }
  });

  test('when a payment ends while its poll is leased and pinged, then its ping mark goes with the lease', async () => {
    const store = createPaymentStore({ redis, keys, retentionSeconds: 60 });
    const machine = createStateMachine({ store, clock, webhookTargets: { global: false } });
    const id = newPaymentId(0);
    const payment = pendingTestPayment(now, { id });
    const member = `poll:${id}`;
    expect(await machine.create(payment, { member, at: now - 1 })).toBe('ok');
    const [held] = (await scheduler.claim(1)).items;
    expect(held?.member).toBe(member);
    expect(await scheduler.advance(member, now)).toBe(true); // a ping during the poll
    expect(await redis.sismember(keys.shard(0).pinged, member)).toBe(1);

    expect(await machine.transition(payment, 'canceled')).toBe('ok');
    expect(await redis.sismember(keys.shard(0).pinged, member)).toBe(0);
    expect(await redis.zscore(keys.shard(0).leases, member)).toBeNull();
    // The worker still holding the poll settles nothing and leaves nothing behind.
    await scheduler.reschedule(member, now + 5000, held?.leaseUntil);
    expect(await redis.scard(keys.shard(0).pinged)).toBe(0);
    expect(await redis.zscore(keys.dueOf(member).key, member)).toBeNull();
  });

  test('when the worker loop runs, then every item is handled once and rescheduled as the handler says', async () => {
    now = Date.now();
    const realClock = { now: () => Date.now() };
    const loopScheduler = createScheduler({ redis, keys, clock: realClock, leaseMs: 5000 });
    const seen: string[] = [];
    for (let i = 0; i < 50; i++) await loopScheduler.schedule(`job:${i}`, now);
    const loop = createWorkerLoop({
      scheduler: loopScheduler,
      clock: realClock,
      logger: createLogger('silent'),
      concurrency: 8,
      idleMs: 5,
      handlers: {
        job: (arg): Promise<HandlerResult> => {
          seen.push(arg);
          return Promise.resolve(seen.filter((s) => s === arg).length < 2 ? { at: Date.now() + 20 } : { done: true });
        },
      },
    });
    loop.start();
    await waitFor(() => seen.length >= 100, 5000, 'every job to run twice');
    await loop.stop(1000);
    expect(seen).toHaveLength(100);
    expect(new Set(seen).size).toBe(50);
    expect((await scheduler.depth()).due).toBe(0);
    expect(await redis.zcard(keys.shard(0).leases)).toBe(0);
  });

  test('when work is spread over shards, then one claim takes from every shard, and a lower shard count strands nothing', async () => {
    const shardPrefix = `${prefix}shards:`;
    const shardKeys = createKeys(shardPrefix);
    const four = createScheduler({ redis, keys: shardKeys, clock, leaseMs: 5000, shards: 4 });
    await four.registerShards();
    const members = [0, 1, 2, 3, 3, 3].map((k) => `poll:${newPaymentId(k)}`);
    for (const m of members) await four.schedule(m, now - 5);
    expect(await four.depth()).toEqual({ due: 6, leased: 0 });

    // Four items asked of four shards: one from each, and a hint that more is due.
    const first = await four.claim(4);
    expect(new Set(first.items.map((i) => shardKeys.shardOf(i.member)))).toEqual(new Set([0, 1, 2, 3]));
    expect(first.more).toBe(true);

    // A process configured with one shard still claims the rest from shard 3 (recorded as in use).
    const one = createScheduler({ redis, keys: shardKeys, clock, leaseMs: 5000, shards: 1 });
    const rest = await one.claim(10);
    const all = [...first.items, ...rest.items].map((i) => i.member);
    expect(all.sort()).toEqual([...members].sort());
    for (const item of [...first.items, ...rest.items]) await one.complete(item.member, item.leaseUntil);
    expect(await one.depth()).toEqual({ due: 0, leased: 0 });
  });
  test('when one shard cannot be claimed from, then the work of the other shards is still claimed', async () => {
    const shardKeys = createKeys(`${prefix}broken-shard:`);
    const two = createScheduler({ redis, keys: shardKeys, clock, leaseMs: 5000, shards: 2 });
    await two.registerShards();
    const healthy = `poll:${newPaymentId(0)}`;
    await two.schedule(healthy, now - 5);
    // Shard 1's due set is not a sorted set: its claim script fails (as a dead primary's would).
    await redis.set(shardKeys.shard(1).dueDir, 'not a sorted set');
    const claimed = await two.claim(10);
    expect(claimed.items.map((i) => i.member)).toEqual([healthy]);
    // With every shard failing, the look fails (the worker loop logs it and backs off).
    await redis.set(shardKeys.shard(0).dueDir, 'not a sorted set either');
    await expect(two.claim(10)).rejects.toThrow(/WRONGTYPE/);
  });

  test('when poll work is claimed with prefetch, then its payment fields come with it, and other kinds get none', async () => {
    const prefetching = createScheduler({
      redis,
      keys,
      clock,
      leaseMs: 5000,
      prefetch: { kind: 'poll', fields: ['status', 'arid', 'missing'] },
    });
    const id = newPaymentId(0);
    await redis.hset(keys.payment(id), { status: 'pending_authorization', arid: 'ar_1' });
    await prefetching.schedule(`poll:${id}`, now - 2);
    await prefetching.schedule(`submit:${id}`, now - 1);
    await prefetching.schedule(`poll:${newPaymentId(0)}`, now); // its hash is gone: all fields absent
    const { items } = await prefetching.claim(10);
    expect(items.map((i) => i.fields)).toEqual([
      ['pending_authorization', 'ar_1', null],
      undefined,
      [null, null, null],
    ]);
    expect(await redis.zcard(keys.shard(0).leases)).toBe(3);
    await redis.del(keys.payment(id));
  });

  test('when due work is still in the due set of an earlier version, then it is claimed and counted, and moves exactly', async () => {
    const k = keys.shard(0);
    await redis.zadd(k.legacyDue, now - 5, 'poll:old1', now + 1000, 'poll:old2', now + 2000, 'poll:old3');
    await scheduler.schedule('poll:new', now - 1);
    expect(await scheduler.depth()).toEqual({ due: 4, leased: 0 });
    const first = await scheduler.claim(10);
    expect(first.items.map((i) => i.member)).toEqual(['poll:old1', 'poll:new']);
    expect(first.nextDueAt).toBe(now + 1000);
    // Scheduling takes the old copy out; a ping moves the old entry earlier where it is.
    await scheduler.schedule('poll:old3', now + 500);
    expect(await scheduler.advance('poll:old2', now)).toBe(true);
    const second = await scheduler.claim(10);
    expect(second.items.map((i) => i.member)).toEqual(['poll:old2']);
    expect(second.nextDueAt).toBe(now + 500);
    expect(await redis.exists(k.legacyDue)).toBe(0);
    now += 500;
    const third = await scheduler.claim(10);
    expect(third.items.map((i) => i.member)).toEqual(['poll:old3']);
    for (const item of [...first.items, ...second.items, ...third.items])
      await scheduler.complete(item.member, item.leaseUntil);
    expect(await scheduler.depth()).toEqual({ due: 0, leased: 0 });
  });

  test('when many items share due buckets, then every claim takes exactly what is due and knows the next due time', async () => {
    // A model of the schedule, checked after every random step (400 members: many share a bucket).
    let seed = 12345;
    const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    const members = Array.from({ length: 400 }, () => `poll:${newPaymentId(0)}`);
    const due = new Map<string, number>();
    const held = new Map<string, ClaimedItem>();
    for (let step = 0; step < 300; step++) {
      const m = members[random(members.length)]!;
      const op = random(5);
      if (op === 0 && !held.has(m)) {
        const at = now + random(2000) - 1000;
        await scheduler.schedule(m, at);
        due.set(m, at);
      } else if (op === 1 && due.has(m)) {
        const at = now + random(2000) - 1000;
        expect(await scheduler.advance(m, at)).toBe(at < due.get(m)!);
        due.set(m, Math.min(due.get(m)!, at));
      } else if (op === 2) {
        const limit = 1 + random(20);
        const ready = [...due].filter(([, at]) => at <= now);
        const { items, nextDueAt } = await scheduler.claim(limit);
        expect(items).toHaveLength(Math.min(limit, ready.length));
        for (const item of items) {
          expect(due.get(item.member)).toBe(item.dueAt);
          due.delete(item.member);
          held.set(item.member, item);
        }
        // Exact, unless the claim stopped at its limit (then "now": more may be due).
        const next = due.size ? Math.min(...due.values()) : null;
        if (items.length < limit) expect(nextDueAt).toBe(next);
        else expect(nextDueAt).toBeLessThanOrEqual(next ?? Infinity);
      } else if (op === 3 && held.size > 0) {
        const item = [...held.values()][random(held.size)]!;
        held.delete(item.member);
        const at = now + random(2000);
        await scheduler.reschedule(item.member, at, item.leaseUntil);
        due.set(item.member, at);
      } else {
        now += random(100);
      }
    }
    expect(await scheduler.depth()).toEqual({ due: due.size, leased: held.size });
    expect(await dueEntries(redis, keys.shard(0))).toEqual(due);
    // Every bucket's directory entry is its earliest due time, and only non-empty buckets are listed.
    const k = keys.shard(0);
    const dir = await redis.zrange(k.dueDir, 0, -1, 'WITHSCORES');
    for (let i = 0; i < dir.length; i += 2)
      expect(await redis.zrange(`${k.dueBucket}${dir[i] ?? ''}`, 0, 0, 'WITHSCORES')).toEqual([
        expect.any(String),
        dir[i + 1],
      ]);
    expect(dir.length / 2).toBe(new Set([...due.keys()].map((m) => keys.dueOf(m).bucket)).size);
    await redis.del(k.leases);
  });

  test('when leases expire, then the claim script puts each item back into the bucket the service computes', async () => {
    const paced = createScheduler({
      redis,
      keys,
      clock,
      leaseMs: 100,
      prefetch: { kind: 'poll', fields: [], pace: { field: 'n', defaultMs: 60_000 } },
    });
    const members = Array.from({ length: 200 }, () => `poll:${newPaymentId(0)}`);
    for (const m of members) await paced.schedule(m, now);
    expect((await paced.claim(500)).items).toHaveLength(200);
    now += 1000; // past the lease, and past the planner's revisit of a shard with nothing due
    expect((await paced.claim(500)).items).toEqual([]); // put back, due a minute after the claim
    for (const m of members) expect(await redis.zscore(keys.dueOf(m).key, m)).toBe(String(now - 1000 + 60_000));
  });

  test('when many leased items are settled in one turn, then each is fenced by its own lease', async () => {
    for (const m of ['poll:s1', 'poll:s2', 'poll:s3']) await scheduler.schedule(m, now);
    await scheduler.schedule('poll:s4', now + 1);
    const mine = (await scheduler.claim(3)).items.sort((x, y) => x.member.localeCompare(y.member));
    const [s1, s2, s3] = mine;
    now += 5001; // s1–s3's leases expire; s4 and the expired ones are claimed by another worker
    const theirs = await scheduler.claim(10);
    expect(theirs.items.map((i) => i.member).sort()).toEqual(['poll:s1', 'poll:s2', 'poll:s3', 'poll:s4']);
    const [t4] = theirs.items.filter((i) => i.member === 'poll:s4');
    const [t2] = theirs.items.filter((i) => i.member === 'poll:s2');
    await Promise.all([
      scheduler.complete('poll:s1', s1!.leaseUntil), // stale: left to the new holder
      scheduler.reschedule('poll:s2', now + 100, t2!.leaseUntil),
      scheduler.reschedule('poll:s3', now + 200, s3!.leaseUntil), // stale
      scheduler.complete('poll:s4', t4!.leaseUntil),
    ]);
    expect([...(await dueEntries(redis, keys.shard(0)))]).toEqual([['poll:s2', now + 100]]);
    expect((await redis.zrange(keys.shard(0).leases, 0, -1)).sort()).toEqual(['poll:s1', 'poll:s3']);
    expect(s2?.member).toBe('poll:s2');
  });
});
