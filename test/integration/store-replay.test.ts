import { randomBytes } from 'node:crypto';
import { createSealer } from '../../src/crypto/sealing.js';
import { createScheduler } from '../../src/jobs/scheduler.js';
import { createLogger } from '../../src/logger.js';
import type { PaymentRecord } from '../../src/payments/payment.js';
import { newPaymentId } from '../../src/payments/payment-id.js';
import { sealContext, type BankClient, type BankPaymentRequest, type PaymentStore } from '../../src/payments/ports.js';
import { createStateMachine } from '../../src/payments/state-machine.js';
import { createSubmitPayment } from '../../src/payments/submit-payment.js';
import { workItem } from '../../src/payments/work-items.js';
import { createCheckoutAdmission } from '../../src/store/checkout-admission.js';
import { createIdempotencyStore } from '../../src/store/idempotency-store.js';
import { createKeys } from '../../src/store/keys.js';
import { createNotificationStore } from '../../src/store/notification-store.js';
import { createPaymentStore } from '../../src/store/payment-store.js';
import type { RedisClient, ScriptCommands } from '../../src/store/redis.js';
import { createDeliveryStore, deliveryIdFor, type DeliveryRecord } from '../../src/webhooks/delivery-store.js';
import { createTestStoreClient, deleteKeysWithPrefix, scanKeys } from '../support/redis.js';
import { pendingTestPayment } from '../support/payments.js';
import { uniquePrefix } from '../support/system.js';

/**
 * Every write of the store, run twice (issue 12.2, "failover without lost money"). ioredis' cluster
 * client sends a command again, to the slot's new primary, when the connection it was written to
 * closes before the reply (cluster/index.js handleError, "Connection is closed."), whether or not it
 * ran; and a caller that retries after a timeout runs it again too. So each mutating store
 * operation runs here through its public function, then the very same script call (same KEYS and
 * ARGV, captured on the way to Redis) is sent again: what Redis holds after two runs must be what
 * it held after one, or the second run is refused. Real Redis, single and cluster.
 *
 * Why each holds: a transition is guarded by its `from` status, and no status leads to itself, so a
 * second run always finds the status moved (also later, after other writes: statuses only move
 * forward). Settle and renew are fenced by the lease score they were given; claim moves what it
 * leased out of the due sets, so a second claim finds it leased; schedule, advance, update, the
 * list index and the key registry write sets, members and fields to the values of their arguments.
 * The Idempotency-Key scripts act only on the caller's claim still in flight (note, complete,
 * release), or answer its own claim again (claim); a void mark is written once. Not here:
 * read-only scripts (depth, listPage), and rate-limiter-flexible's counters (a point counted twice refuses a
 * checkout a little early: it moves no money and changes no payment).
 */
const SCRIPTS = new Set<string>([
  'claim',
  'settle',
  'schedule',
  'renew',
  'advance',
  'transition',
  'update',
  'listAdd',
  'reservePending',
  'registerKeyHolder',
  'idempotencyClaim',
  'idempotencyNote',
  'idempotencyComplete',
  'idempotencyRelease',
  'voidPayment',
] satisfies (keyof ScriptCommands)[]);

interface ScriptCall {
  name: string;
  args: unknown[];
}

const redis = createTestStoreClient();
const prefixes: string[] = [];

afterAll(async () => {
  for (const prefix of prefixes) await deleteKeysWithPrefix(prefix);
  redis.disconnect();
});

/** The store client, with the script calls made through it noted (a thin wrapper: the calls go on unchanged). */
function recording(client: RedisClient): { client: RedisClient; calls: ScriptCall[] } {
  const calls: ScriptCall[] = [];
  const proxy = new Proxy(client, {
    get(target, name, receiver) {
      const value: unknown = Reflect.get(target, name, receiver);
      if (typeof value !== 'function') return value;
      const run = value as (...args: unknown[]) => unknown;
      if (typeof name === 'string' && SCRIPTS.has(name))
        return (...args: unknown[]) => {
          calls.push({ name, args });
          return run.apply(target, args);
        };
      return run.bind(target);
    },
  });
  return { client: proxy, calls };
}

/** Everything under `prefix`: each key's value, and whether it expires. */
async function snapshot(prefix: string): Promise<Record<string, unknown>> {
  const state: Record<string, unknown> = {};
  for (const key of await scanKeys(redis, `${prefix}*`)) {
    const type = await redis.type(key);
    const value =
      type === 'hash'
        ? await redis.hgetall(key)
        : type === 'zset'
          ? await redis.zrange(key, 0, -1, 'WITHSCORES')
          : type === 'set'
            ? (await redis.smembers(key)).sort()
            : await redis.get(key);
    state[key] = { value, expires: (await redis.pttl(key)) >= 0 };
  }
  return state;
}

/** A store of its own prefix, every script call of it noted. */
function world() {
  const prefix = uniquePrefix('replay');
  prefixes.push(prefix);
  const keys = createKeys(prefix);
  const { client, calls } = recording(redis);
  let now = 1_000_000_000;
  const clock = { now: () => now, advance: (ms: number) => (now += ms) };
  const store = createPaymentStore({ redis: client, keys, retentionSeconds: 3600 });
  const machine = createStateMachine({ store, clock, webhookTargets: { global: true } });
  const scheduler = createScheduler({ redis: client, keys, clock, leaseMs: 5000 });

  /**
   * Runs `act`, then sends each script call it made again, in order: the state after both equals the
   * state after `act`. Returns the scripts `act` ran and what the second runs answered.
   */
  async function twice(act: () => Promise<unknown>): Promise<{ scripts: string[]; again: unknown[] }> {
    calls.length = 0;
    await act();
    const made = calls.splice(0);
    const once = await snapshot(prefix);
    const again: unknown[] = [];
    for (const { name, args } of made) {
      const run = (redis as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name];
      again.push(await run?.apply(redis, args));
    }
    expect(await snapshot(prefix)).toEqual(once);
    return { scripts: made.map((c) => c.name), again };
  }

  const created = async (overrides: Partial<PaymentRecord> = {}) => {
    const payment = pendingTestPayment(clock.now(), { id: newPaymentId(0), ...overrides });
    expect(await machine.create(payment, { member: workItem.poll(payment.id), at: clock.now() })).toBe('ok');
    return payment;
  };
  return { prefix, keys, clock, client, store, machine, scheduler, twice, created };
}

describe('store writes run twice', () => {
  test('when a payment is created twice, then the second create is refused: one payment, one event, one poll, one list entry', async () => {
    const w = world();
    const payment = pendingTestPayment(w.clock.now(), { id: newPaymentId(0) });
    const { scripts, again } = await w.twice(() =>
      w.machine.create(payment, { member: workItem.poll(payment.id), at: w.clock.now() }),
    );
    expect(scripts.sort()).toEqual(['listAdd', 'transition']);
    expect(again).toContain(-1); // the payment exists: refused
    expect(await w.client.hget(w.keys.payment(payment.id), 'e2')).toBeNull();
  });

  test('when a transition runs twice, then the second finds the status moved and is refused: no second event, no second submit', async () => {
    const w = world();
    const payment = await w.created();
    const { scripts, again } = await w.twice(() =>
      w.machine.transition(payment, 'authorized', {
        fields: { sealedAccessToken: 'sealed' },
        schedule: { member: workItem.submit(payment.id), at: w.clock.now() },
      }),
    );
    expect(scripts).toEqual(['transition']);
    expect(again).toEqual([-2]); // statuses only move forward (no status leads to itself): never applied twice
    expect(await w.client.hget(w.keys.payment(payment.id), 'e3')).toBeNull();
  });

  test('when a terminal transition runs twice, then one failed event and one round of webhook deliveries', async () => {
    const w = world();
    const payment = await w.created({ callbackUrl: 'https://shop.example/hook' });
    const { again } = await w.twice(() => w.machine.transition(payment, 'failed', { failureCode: 'access_denied' }));
    expect(again).toEqual([-2]);
    const due = await w.client.zrange(w.keys.dueOf(payment.id).key, 0, -1);
    expect(due.filter((m) => m.startsWith('hook:'))).toHaveLength(4); // g and c, for the created and the failed event
  });

  test('when a note, a held token and a bank call note are written twice, then the payment holds each once', async () => {
    const w = world();
    const payment = await w.created();
    expect((await w.twice(() => w.store.update(payment.id, { attempts: 3, intervalMs: 10_000 }))).again).toEqual([1]);
    const hold = () => w.store.update(payment.id, { heldToken: 'sealed', spentGrant: null }, ['pending_authorization']);
    expect((await w.twice(hold)).again).toEqual([1]);
    expect(await w.machine.transition(payment, 'authorized')).toBe('ok');
    expect(await w.machine.transition({ ...payment, status: 'authorized' }, 'processing')).toBe('ok');
    expect((await w.twice(() => w.store.recordBankCall(payment.id, w.clock.now()))).again).toEqual([1]);
  });

  test('when a held token write is sent again after the payment failed, then it is refused', async () => {
    const w = world();
    const payment = await w.created();
    // The write is noted on its way, the payment fails (which drops the held token), then the write arrives again.
    const { client, calls } = recording(redis);
    const store = createPaymentStore({ redis: client, keys: w.keys, retentionSeconds: 3600 });
    expect(await store.update(payment.id, { heldToken: 'sealed' }, ['pending_authorization'])).toBe('ok');
    const current = await w.store.get(payment.id);
    expect(await w.machine.transition(current as PaymentRecord, 'failed', { failureCode: 'expired' })).toBe('ok');
    const [late] = calls;
    expect(await redis.update(...(late?.args as Parameters<RedisClient['update']>))).toBe(-2);
    expect((await w.store.get(payment.id))?.heldToken).toBeNull(); // before: a token at rest on a failed payment
  });

  test('when scheduling, claiming, renewing and settling run twice, then no work is leased, due or settled twice', async () => {
    const w = world();
    const member = workItem.poll(newPaymentId(0));
    expect((await w.twice(() => w.scheduler.schedule(member, w.clock.now()))).again).toEqual([1]);

    // A claim sent again with the same time and lease finds nothing more due: the first claim's items
    // stay leased once (its reply lost, they come back when the lease expires, as after a crash).
    let claimed = { items: [] as Awaited<ReturnType<typeof w.scheduler.claim>>['items'] };
    const claim = await w.twice(async () => (claimed = await w.scheduler.claim(10)));
    expect(claimed.items.map((i) => i.member)).toEqual([member]);
    expect(claim.scripts).toEqual(['claim']);
    expect(claim.again).toEqual([['']]);

    // Harmless by design: a renewal sent again finds the lease moved by its first run, changes nothing
    // and answers lost. The worker then stops renewing it: the lease runs out and the work is taken
    // over, as after a crash (no second holder). Accepting a lease already at the new expiry as renewed
    // would let a worker whose lease ran out share it with one that claimed it in the same millisecond.
    w.clock.advance(1000);
    const [item] = claimed.items;
    const held = item?.leaseUntil;
    const renew = await w.twice(() => w.scheduler.renew(claimed.items));
    expect(renew.again).toEqual([[0]]);
    expect(item?.leaseUntil).toBe(w.clock.now() + 5000);
    expect(item?.leaseUntil).not.toBe(held);

    // A settle sent again finds the lease gone (the fencing token): nothing due twice.
    const settle = await w.twice(() => w.scheduler.reschedule(member, w.clock.now() + 60_000, item?.leaseUntil));
    expect(settle.again).toEqual([[0]]);

    w.clock.advance(60_000);
    claimed = await w.scheduler.claim(10);
    const done = await w.twice(() => w.scheduler.complete(member, claimed.items[0]?.leaseUntil));
    expect(done.again).toEqual([[0]]);
    expect(await snapshot(w.prefix)).toEqual({}); // nothing left: not due, not leased
  });

  test('when a schedule is sent again after a worker claimed the work, then the work is not due beside its lease', async () => {
    const w = world();
    const member = workItem.hook(newPaymentId(0), 2, 'g');
    const { client, calls } = recording(redis);
    const api = createScheduler({ redis: client, keys: w.keys, clock: w.clock, leaseMs: 5000 });
    expect(await api.schedule(member, w.clock.now())).toBe(true); // a webhook resend
    expect((await w.scheduler.claim(10)).items.map((i) => i.member)).toEqual([member]); // its attempt starts

    const leased = await snapshot(w.prefix);
    const [schedule] = calls;
    expect(await redis.schedule(...(schedule?.args as Parameters<RedisClient['schedule']>))).toBe(0);
    expect(await snapshot(w.prefix)).toEqual(leased); // before: due again, a second worker sent it beside the first
    expect(await api.schedule(member, w.clock.now())).toBe(false);
  });

  test('when a ping advances work twice, then it moves once and wakes the workers once', async () => {
    const w = world();
    const payment = await w.created();
    const poll = workItem.poll(payment.id);
    await w.scheduler.schedule(poll, w.clock.now() + 30_000);
    const moved = await w.twice(() => w.scheduler.advance(poll, w.clock.now()));
    expect(moved.again).toEqual([0]); // not moved again, so no second wake-up (it publishes only when it moved)

    await w.scheduler.claim(10);
    const marked = await w.twice(() => w.scheduler.advance(poll, w.clock.now()));
    // Harmless by design: the mark is a set member (marked once), and the settle that reads it is one.
    expect(marked.again).toEqual([1]);
  });

  test('when a customer place is held twice, then one place, and the second run holds it rather than refusing its own', async () => {
    const w = world();
    const admission = createCheckoutAdmission({
      redis: w.client,
      keys: w.keys,
      clock: w.clock,
      readPayment: (id) => w.store.get(id),
      limits: {
        checkoutPerMinute: 0,
        loginHintPerMinute: 0,
        loginHintPerHour: 0,
        loginHintPerDay: 0,
        maxPendingPerLoginHint: 1,
        denialCooldownSeconds: 0,
        denialCooldownMaxSeconds: 0,
      },
      holdMs: 30_000,
    });
    let ticket: Awaited<ReturnType<typeof admission.admit>> | undefined;
    const held = await w.twice(
      async () => (ticket = await admission.admit({ clientAddress: null, customerKey: 'c1' })),
    );
    expect(held.scripts).toEqual(['reservePending']);
    expect(held.again).toEqual([[1]]); // before: [0, ms], its own place counted against it (409 checkout_pending)

    // Confirming and releasing are plain commands: sent twice, the same.
    const payment = newPaymentId(0);
    await sameAfterSecond(w.prefix, async () => ticket?.confirm(payment, w.clock.now() + 60_000));
    await sameAfterSecond(w.prefix, async () => ticket?.release());
  });

  test('when a process registers its keys twice, then its entry is written once and it is not its own conflict', async () => {
    const w = world();
    const now = Date.now();
    const register = () =>
      w.client.registerKeyHolder(w.keys.keyHolders, w.keys.layoutHolders, now, now + 10_000, 'p1', 'ab', 'ab', '2');
    expect((await w.twice(register)).again).toEqual([[0, 0, '']]);
  });

  test("when Idempotency-Key claim scripts run twice, then each acts once: the second finds the claim taken or no longer the caller's", async () => {
    const w = world();
    const sealer = createSealer([randomBytes(32)]);
    const idempotency = createIdempotencyStore({
      redis: w.client,
      keys: w.keys,
      inFlightSeconds: 60,
      sealer,
      clock: w.clock,
    });
    const claim = (key: string) => ({ scope: 'shop', key, owner: 'o1' });
    // The caller hears the second run's answer: its own claim again, not in_flight (409 to itself).
    expect((await w.twice(() => idempotency.claim(claim('k'), 'print'))).again).toEqual([['new']]);
    const note = () => idempotency.note(claim('k'), { paymentId: 'pay_1', clientSecret: 's' });
    expect((await w.twice(note)).again).toEqual([1]);
    const answer = { status: 202, body: '{}', location: '/payments/pay_1' };
    expect((await w.twice(() => idempotency.complete(claim('k'), answer))).again).toEqual([0]);
    await idempotency.claim(claim('r'), 'print');
    expect((await w.twice(() => idempotency.release(claim('r')))).again).toEqual([0]);
    expect((await w.twice(() => w.store.voidUnlessCreated(newPaymentId(0)))).again).toEqual([1]);
  });

  test('when the list index, notification, delivery and shard writes run twice, then each is there once', async () => {
    const w = world();
    const ids = Array.from({ length: 130 }, () => newPaymentId(0));
    for (const id of ids.slice(0, 127)) await w.client.listAdd(...listArgs(w, id, w.clock.now()));
    // The entry that splits a full leaf: the second run finds it listed and splits nothing more.
    expect((await w.twice(() => w.client.listAdd(...listArgs(w, ids[127] ?? '', w.clock.now())))).again).toEqual([2]);

    // Plain commands (SET, SADD, MULTI): sent twice, the same.
    const notifications = createNotificationStore({ redis: w.client, keys: w.keys });
    const deliveries = createDeliveryStore({ redis: w.client, keys: w.keys, retentionSeconds: 3600 });
    const id = ids[0] ?? '';
    await sameAfterSecond(w.prefix, () => notifications.remember('hash', id, 60));
    await sameAfterSecond(w.prefix, () => w.scheduler.registerShards());
    await sameAfterSecond(w.prefix, () => deliveries.save(deliveryRecord(id, w.clock.now())));
    await w.scheduler.schedule(workItem.submit(id), w.clock.now());
    await w.scheduler.claim(10);
    await sameAfterSecond(w.prefix, () => w.scheduler.complete(workItem.submit(id))); // the drop without a lease
  });
});

describe('a money step whose transition runs twice', () => {
  test('when the move to processing is sent again and answers conflict, then the payment is still paid, once', async () => {
    const w = world();
    const sealer = createSealer([randomBytes(32)]);
    const payment = await w.created();
    const authorized = await w.machine.transition(payment, 'authorized', {
      fields: {
        sealedAccessToken: sealer.seal('at', sealContext(payment.id, 'token')),
        accessTokenExpiresAt: w.clock.now() + 300_000,
      },
    });
    expect(authorized).toBe('ok');
    // The store as a cluster client drives it when a connection closes before the reply: the same
    // transition runs again, and the caller hears the second run's answer.
    const resent: PaymentStore = {
      ...w.store,
      transition: async (request) => {
        await w.store.transition(request);
        return w.store.transition(request);
      },
    };
    const stateMachine = createStateMachine({ store: resent, clock: w.clock, webhookTargets: { global: true } });
    const calls: BankPaymentRequest[] = [];
    const bank = {
      createPayment: (request: BankPaymentRequest) => {
        calls.push(request); // the bank is not what is tested here: its calls are counted
        return Promise.resolve({ kind: 'accepted', bankPaymentId: 'bank-1' } as const);
      },
    } as unknown as BankClient;
    const submit = createSubmitPayment({
      store: resent,
      stateMachine,
      bank,
      sealer,
      clock: w.clock,
      logger: createLogger('silent'),
      merchant: { name: 'Demo Tea Shop', iban: 'DE89370400440532013000' },
      reconcile: () => Promise.reject(new Error('no reconciliation expected')),
    });

    expect(await submit(payment.id)).toEqual({ done: true });
    expect((await w.store.get(payment.id))?.status).toBe('succeeded'); // before: stuck in processing, no work left
    expect(calls.map((c) => c.idempotencyKey)).toEqual([payment.id]); // before: the bank never asked
  });
});

/** A plain write (no script) run twice leaves what it left once. */
async function sameAfterSecond(prefix: string, write: () => Promise<unknown>): Promise<void> {
  await write();
  const once = await snapshot(prefix);
  await write();
  expect(await snapshot(prefix)).toEqual(once);
}

function listArgs(w: ReturnType<typeof world>, id: string, now: number): Parameters<RedisClient['listAdd']> {
  const list = w.keys.paymentListIndex;
  return [list.directory, list.counter, list.leafPrefix, now - 3_600_000, 128, now, id];
}

/** A delivery record as the webhook sender makes one for a new event. */
function deliveryRecord(paymentId: string, now: number): DeliveryRecord {
  const times = { createdAt: now, updatedAt: now, roundStartedAt: now, nextAttemptAt: now, deliveredAt: null };
  const attempts = { attempts: 0, roundAttempts: 0, lastStatus: null, lastError: null, history: [] };
  const event = { eventId: 'evt_1', eventType: 'payment.pending_authorization', paymentId };
  return {
    id: deliveryIdFor('evt_1', 'g'),
    ...event,
    target: 'g',
    url: 'https://shop.example/hook',
    state: 'pending',
    ...times,
    ...attempts,
  };
}
