import { randomBytes } from 'node:crypto';
import type { Express } from 'express';
import request from 'supertest';
import { createApiApp } from '../../src/composition/api.js';
import { buildParts, closeParts, type Parts } from '../../src/composition/parts.js';
import { loadConfig } from '../../src/config.js';
import { createSealer } from '../../src/crypto/sealing.js';
import type { ClaimRef, IdempotencyStore } from '../../src/payments/idempotency.js';
import type { PaymentRecord } from '../../src/payments/payment.js';
import { createStateMachine } from '../../src/payments/state-machine.js';
import { workItem } from '../../src/payments/work-items.js';
import type { SandboxBank } from '../../src/sandbox/bank.js';
import { createIdempotencyStore } from '../../src/store/idempotency-store.js';
import { createKeys } from '../../src/store/keys.js';
import { createPaymentStore } from '../../src/store/payment-store.js';
import type { RedisClient } from '../../src/store/redis.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { waitFor } from '../support/api.js';
import { pendingTestPayment } from '../support/payments.js';
import { createTestStoreClient, deleteKeysWithPrefix, scanKeys, testRedisMode } from '../support/redis.js';
import { serviceEnv } from '../support/service-env.js';
import { startTestBank, testCertificates, uniquePrefix } from '../support/system.js';

const HOLD_SECONDS = 60;
/** What every primary of the test Redis has: the shared cluster one replica each, the single Redis none. */
const REPLICAS = testRedisMode() === 'cluster' ? 1 : 0;
/** More than any node has: WAIT falls short (after its timeout), as when a replica is down or behind. */
const TOO_MANY = 16;
const accepted = { status: 202, body: '{"id":"pay_x","client_secret":"s"}', location: '/payments/pay_x' };

type Command = (...args: unknown[]) => Promise<unknown>;

/** The client with some commands wrapped (a fault after or instead of the real run); each wrapper gets the real command. */
function withCommands(redis: RedisClient, wraps: Partial<Record<keyof RedisClient, (run: Command) => Command>>) {
  return new Proxy(redis, {
    get(target, name, receiver) {
      const value: unknown = Reflect.get(target, name, receiver);
      const wrap = wraps[name as keyof RedisClient];
      if (!wrap || typeof value !== 'function') return value;
      return wrap((...args) => (value as Command).apply(target, args));
    },
  });
}

/** A command that runs, then its caller hears a fault (a timeout, the connection closed): it answers 503. */
const ranThenTimedOut =
  (run: Command): Command =>
  async (...args) => {
    await run(...args);
    throw new Error('Command timed out');
  };

/**
 * Idempotency-Key claims carry an owner (random per request): complete, release and note act only on
 * the caller's claim still in flight, so an end sent again after a lost reply never frees or
 * overwrites a newer request's claim; a claim whose payment was noted before the bank was asked is
 * settled, never freed blindly. On real Redis, in both modes.
 */
describe('Idempotency-Key claims: owners, lost replies, settled creations', () => {
  const prefix = uniquePrefix('idem');
  const keys = createKeys(`${prefix}:`);
  let redis: RedisClient;
  const time = { now: Date.now() };
  const clock = { now: () => time.now };
  let idempotency: IdempotencyStore;
  const ref = (key: string, owner: string): ClaimRef => ({ scope: 'ip:127.0.0.1', key, owner });
  const raw = (key: string) => redis.hgetall(keys.idempotency('ip:127.0.0.1', key));

  beforeAll(() => {
    redis = createTestStoreClient();
    idempotency = createIdempotencyStore({
      redis,
      keys,
      inFlightSeconds: HOLD_SECONDS,
      sealer: createSealer([randomBytes(32)]),
      clock,
    });
  });

  afterAll(async () => {
    redis.disconnect();
    await deleteKeysWithPrefix(prefix);
  });

  test('when another request ends or notes a claim it does not own, then nothing changes', async () => {
    expect(await idempotency.claim(ref('k1', 'a'), 'print')).toEqual({ state: 'new' });
    const before = await raw('k1');

    expect(await idempotency.note(ref('k1', 'b'), { paymentId: 'pay_b', clientSecret: 'sb' })).toBe(false);
    expect(await idempotency.complete(ref('k1', 'b'), accepted)).toBe(false);
    expect(await idempotency.release(ref('k1', 'b'))).toBe(false);

    expect(await raw('k1')).toEqual(before);
    expect(await idempotency.claim(ref('k1', 'c'), 'print')).toEqual({ state: 'in_flight' });
    expect(await idempotency.complete(ref('k1', 'a'), accepted)).toBe(true);
    expect(await idempotency.claim(ref('k1', 'c'), 'print')).toEqual({ state: 'replay', response: accepted });
  });

  test('when an end is sent again after its reply was lost, then a newer claim of the key stays as it is', async () => {
    // a's release ran, its reply was lost; b claimed the freed key; a's release (or complete) arrives again.
    expect(await idempotency.claim(ref('k2', 'a'), 'print')).toEqual({ state: 'new' });
    expect(await idempotency.release(ref('k2', 'a'))).toBe(true);
    expect(await idempotency.claim(ref('k2', 'b'), 'print')).toEqual({ state: 'new' });

    expect(await idempotency.release(ref('k2', 'a'))).toBe(false);
    expect(await idempotency.complete(ref('k2', 'a'), { ...accepted, body: '{"id":"pay_a"}' })).toBe(false);

    expect(await idempotency.claim(ref('k2', 'c'), 'print')).toEqual({ state: 'in_flight' });
    expect(await idempotency.complete(ref('k2', 'b'), accepted)).toBe(true);
    // A complete sent again after its own answer was stored changes nothing either.
    expect(await idempotency.complete(ref('k2', 'b'), { ...accepted, status: 500 })).toBe(false);
    expect(await idempotency.claim(ref('k2', 'c'), 'print')).toEqual({ state: 'replay', response: accepted });
  });

  test('when a noted claim outlives its hold, then the next request takes it over, once, with the payment to settle', async () => {
    expect(await idempotency.claim(ref('k3', 'a'), 'print')).toEqual({ state: 'new' });
    expect(await idempotency.note(ref('k3', 'a'), { paymentId: 'pay_n', clientSecret: 'pay_n_secret' })).toBe(true);
    // Kept past the hold: the hold only says when another request may settle it.
    expect(await redis.ttl(keys.idempotency('ip:127.0.0.1', 'k3'))).toBeGreaterThan(HOLD_SECONDS);
    expect(await idempotency.claim(ref('k3', 'b'), 'print')).toEqual({ state: 'in_flight' });

    time.now += HOLD_SECONDS * 1000 + 1;
    expect(await idempotency.claim(ref('k3', 'b'), 'print')).toEqual({
      state: 'unsettled',
      noted: { paymentId: 'pay_n', clientSecret: 'pay_n_secret' },
    });
    expect(await idempotency.claim(ref('k3', 'c'), 'print')).toEqual({ state: 'in_flight' });
    expect(await idempotency.complete(ref('k3', 'a'), accepted)).toBe(false);
    expect(await idempotency.complete(ref('k3', 'b'), accepted)).toBe(true);
    expect(await idempotency.claim(ref('k3', 'c'), 'print')).toEqual({ state: 'replay', response: accepted });
  });

  test('when a claim is sent again after its reply was lost, then its request hears the first answer and can end it', async () => {
    // ioredis' cluster client sends a script again when its connection closes before the reply.
    expect(await idempotency.claim(ref('k5', 'a'), 'print')).toEqual({ state: 'new' });
    expect(await idempotency.claim(ref('k5', 'a'), 'print')).toEqual({ state: 'new' }); // before: in_flight (409)
    expect(await idempotency.claim(ref('k5', 'b'), 'print')).toEqual({ state: 'in_flight' });
    expect(await idempotency.note(ref('k5', 'a'), { paymentId: 'pay_5', clientSecret: 's5' })).toBe(true);
    time.now += HOLD_SECONDS * 1000 + 1;
    const takenOver = { state: 'unsettled', noted: { paymentId: 'pay_5', clientSecret: 's5' } };
    expect(await idempotency.claim(ref('k5', 'b'), 'print')).toEqual(takenOver);
    expect(await idempotency.claim(ref('k5', 'b'), 'print')).toEqual(takenOver); // the takeover sent again
    expect(await idempotency.claim(ref('k5', 'c'), 'print')).toEqual({ state: 'in_flight' });
    expect(await idempotency.complete(ref('k5', 'b'), accepted)).toBe(true);
    expect(await idempotency.claim(ref('k5', 'b'), 'print')).toEqual({ state: 'replay', response: accepted });
  });

  test('when a claim ran but its caller heard a fault, then its claim is freed in the background, not held for the hold', async () => {
    // The claim runs, then the caller hears a fault (a timeout, the connection closed): it answers 503.
    const faulty = withCommands(redis, {
      idempotencyClaim: ranThenTimedOut,
    });
    const sealer = createSealer([randomBytes(32)]);
    const deps = { keys, inFlightSeconds: HOLD_SECONDS, sealer, clock };
    const timingOut = createIdempotencyStore({ ...deps, redis: faulty });
    await expect(timingOut.claim(ref('k6', 'a'), 'print')).rejects.toThrow('Command timed out');
    await waitFor(async () => (await raw('k6')).state === undefined, 5000, 'the claim freed');
    expect(await idempotency.claim(ref('k6', 'b'), 'print')).toEqual({ state: 'new' });
  });

  test('when a claim whose caller heard a fault lands only later (sent again), then it is freed all the same', async () => {
    const late: { send?: () => Promise<unknown>; releases: number } = { releases: 0 };
    const resending = withCommands(redis, {
      idempotencyRelease:
        (run) =>
        (...args) => {
          late.releases++;
          return run(...args);
        },
      idempotencyClaim:
        (run) =>
        (...args) => {
          // Not run yet: the cluster client holds it to send again once the slot's new primary is known.
          late.send = () => run(...args);
          return Promise.reject(new Error('Connection is closed.'));
        },
    });
    const sealer = createSealer([randomBytes(32)]);
    const deps = { keys, inFlightSeconds: HOLD_SECONDS, sealer, clock };
    await expect(createIdempotencyStore({ ...deps, redis: resending }).claim(ref('k8', 'a'), 'print')).rejects.toThrow(
      'Connection is closed.',
    );
    await waitFor(() => late.releases > 0, 5000, 'a first try at freeing it, which finds nothing');
    await late.send?.();
    expect((await raw('k8')).owner).toBe('a');
    await waitFor(async () => (await raw('k8')).state === undefined, 10_000, 'the late claim freed');
    expect(await idempotency.claim(ref('k8', 'b'), 'print')).toEqual({ state: 'new' });
  });

  test('when a takeover of a noted claim is unheard by its caller, then the note is kept and the next request settles it, never runs afresh', async () => {
    expect(await idempotency.claim(ref('k9', 'x'), 'print')).toEqual({ state: 'new' });
    expect(await idempotency.note(ref('k9', 'x'), { paymentId: 'pay_9', clientSecret: 's9' })).toBe(true);
    time.now += HOLD_SECONDS * 1000 + 1; // x crashed before complete; its hold ran out
    // a's takeover runs, then its caller hears a fault (a timeout, the connection closed): it answers 503.
    const freed = { releases: 0 };
    const faulty = withCommands(redis, {
      idempotencyRelease:
        (run) =>
        async (...args) => {
          const answer = await run(...args);
          freed.releases++;
          return answer;
        },
      idempotencyClaim: ranThenTimedOut,
    });
    const sealer = createSealer([randomBytes(32)]);
    const timingOut = createIdempotencyStore({ keys, inFlightSeconds: HOLD_SECONDS, sealer, clock, redis: faulty });
    await expect(timingOut.claim(ref('k9', 'a'), 'print')).rejects.toThrow('Command timed out');
    await waitFor(() => freed.releases > 0, 5000, 'the unheard claim released');

    // Before: the release deleted the claim with pay_9's note, and b got 'new' (a second payment).
    expect(await idempotency.claim(ref('k9', 'b'), 'print')).toEqual({
      state: 'unsettled',
      noted: { paymentId: 'pay_9', clientSecret: 's9' },
    });
    expect(await idempotency.claim(ref('k9', 'c'), 'print')).toEqual({ state: 'in_flight' });
    // The release after a void still frees it.
    expect(await idempotency.release(ref('k9', 'b'))).toBe(true);
    expect(await idempotency.claim(ref('k9', 'c'), 'print')).toEqual({ state: 'new' });
  });

  test('when a claim holds a payment without its secret, then it is answered in flight, never taken over nor run', async () => {
    const k = keys.idempotency('ip:127.0.0.1', 'k10');
    await redis.hset(
      k,
      'state',
      'in_flight',
      'fingerprint',
      'print',
      'owner',
      'a',
      'held_until',
      0,
      'payment',
      'pay_10',
    );
    await redis.expire(k, HOLD_SECONDS);

    // Before: 'unsettled' with an empty secret, which the sealer refused (a 500).
    expect(await idempotency.claim(ref('k10', 'b'), 'print')).toEqual({ state: 'in_flight' });
    expect(await idempotency.claim(ref('k10', 'a'), 'print')).toEqual({ state: 'in_flight' });
    expect((await raw('k10')).owner).toBe('a');
  });

  test('when fewer replicas than required acknowledge a note or a void mark, then the note fails and the void cannot tell, each raising an alarm', async () => {
    const alarms: string[] = [];
    const durability = (replicas: number) => ({ replicas, timeoutMs: replicas === TOO_MANY ? 50 : 2000 });
    const sealer = createSealer([randomBytes(32)]);
    const claims = (replicas: number) =>
      createIdempotencyStore({
        redis,
        keys,
        inFlightSeconds: HOLD_SECONDS,
        sealer,
        clock,
        durability: durability(replicas),
        onNoteUnreplicated: () => alarms.push('note'),
      });
    const noted = { paymentId: 'pay_7', clientSecret: 's7' };
    expect(await claims(TOO_MANY).claim(ref('k7', 'a'), 'print')).toEqual({ state: 'new' });
    // Before: true, and the bank was asked with a note a failover could lose (a retry then made a second payment).
    await expect(claims(TOO_MANY).note(ref('k7', 'a'), noted)).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(await claims(REPLICAS).note(ref('k7', 'a'), noted)).toBe(true);
    expect(alarms).toEqual(['note']); // before: no alarm

    const payments = (replicas: number) =>
      createPaymentStore({
        redis,
        keys,
        retentionSeconds: 3600,
        durability: durability(replicas),
        onVoidUnreplicated: () => alarms.push('void'),
      });
    const doubtful = pendingTestPayment(time.now);
    await expect(payments(TOO_MANY).voidUnlessCreated(doubtful.id)).rejects.toMatchObject({
      code: 'store_unavailable',
    });
    expect(await payments(REPLICAS).voidUnlessCreated(doubtful.id)).toBeNull();
    expect(alarms).toEqual(['note', 'void']);
  });

  test('when a claim was written by the release before owners, then it stays in flight until its hold frees it, and no end of this release touches it', async () => {
    const k = keys.idempotency('ip:127.0.0.1', 'k4');
    // What the previous idempotency-claim-1.lua wrote.
    await redis.hset(k, 'state', 'in_flight', 'fingerprint', 'print');
    await redis.expire(k, HOLD_SECONDS);
    time.now += 10 * HOLD_SECONDS * 1000;

    expect(await idempotency.claim(ref('k4', 'a'), 'print')).toEqual({ state: 'in_flight' });
    expect(await idempotency.complete(ref('k4', 'a'), accepted)).toBe(false);
    expect(await idempotency.release(ref('k4', 'a'))).toBe(false);
    expect(await raw('k4')).toEqual({ state: 'in_flight', fingerprint: 'print' });
    expect(await redis.ttl(k)).toBeLessThanOrEqual(HOLD_SECONDS);
  });

  test('when a creation in doubt is settled, then an existing payment is found, and a missing one can never be created', async () => {
    const store = createPaymentStore({ redis, keys, retentionSeconds: 3600 });
    const machine = createStateMachine({ store, clock, webhookTargets: { global: false } });
    const create = (record: PaymentRecord) => machine.create(record, { member: workItem.poll(record.id), at: 0 });
    const made = pendingTestPayment(time.now);
    expect(await create(made)).toBe('ok');
    expect((await store.voidUnlessCreated(made.id))?.id).toBe(made.id);

    const doubtful = pendingTestPayment(time.now);
    expect(await store.voidUnlessCreated(doubtful.id)).toBeNull();
    // The create arriving late (sent again, a node resuming) is refused, and no reader sees a payment.
    expect(await create(doubtful)).not.toBe('ok');
    expect(await store.get(doubtful.id)).toBeNull();
    expect(await store.voidUnlessCreated(doubtful.id)).toBeNull();
  });
});

/**
 * A create that ran in Redis but whose reply was lost (a failover, a timeout), simulated at the port:
 * the real create, then a store fault. A retry with the same key must get the SAME payment (or 409
 * until settled), never a second one; the bank sees one CIBA request per key.
 */
describe('checkout whose create reply is lost', () => {
  const prefix = uniquePrefix('idemlost');
  let bank: SandboxBank;
  let parts: Parts;
  let app: Express;
  const faults = {
    createRunsThenFails: 0,
    createFailsBeforeRunning: 0,
    createSentTwice: 0,
    settleFails: 0,
    beforeCreate: undefined as (() => Promise<void>) | undefined,
  };
  const created: string[] = [];
  let env: Record<string, string>;

  beforeAll(async () => {
    bank = await startTestBank(prefix);
    env = serviceEnv({ bank, certs: testCertificates(), prefix: `${prefix}svc:` });
    parts = buildParts(loadConfig(env), {
      logger: createLogger('silent'),
      metrics: createMetrics({ defaultMetrics: false }),
    });
    const create = parts.stateMachine.create.bind(parts.stateMachine);
    parts.stateMachine.create = async (record, firstWork) => {
      const before = faults.beforeCreate;
      faults.beforeCreate = undefined;
      await before?.();
      if (faults.createFailsBeforeRunning > 0) {
        faults.createFailsBeforeRunning--;
        created.push(record.id);
        throw new Error('Connection is closed.');
      }
      const result = await create(record, firstWork);
      created.push(record.id);
      if (faults.createSentTwice > 0) {
        // The cluster client's resend after "Connection is closed": the second run's answer is the one heard.
        faults.createSentTwice--;
        return create(record, firstWork);
      }
      if (faults.createRunsThenFails > 0) {
        faults.createRunsThenFails--;
        throw new Error('Connection is closed.');
      }
      return result;
    };
    const voidUnlessCreated = parts.store.voidUnlessCreated.bind(parts.store);
    parts.store.voidUnlessCreated = async (id) => {
      if (faults.settleFails > 0) {
        faults.settleFails--;
        throw new Error('Connection is closed.');
      }
      return voidUnlessCreated(id);
    };
    app = createApiApp(parts, { isDraining: () => false });
  });

  afterAll(async () => {
    await closeParts(parts, { cutBankCalls: true });
    await bank.close();
    await deleteKeysWithPrefix(prefix);
  });

  const checkout = (key: string, login = 'user') =>
    request(app)
      .post('/checkout')
      .set('idempotency-key', key)
      .send({ items: [{ sku: 'tea-01', quantity: 1 }], login_hint: login });
  const cibaRequests = async () => (await bank.pending()).length;

  test('when the create ran but its reply was lost, then the checkout answers that payment and a retry replays it', async () => {
    const asked = await cibaRequests();
    faults.createRunsThenFails = 1;
    const first = await checkout(`${prefix}lost`);
    expect(first.status).toBe(202);
    const id = created.at(-1);
    expect(first.body.id).toBe(id);
    expect(first.headers.location).toBe(`/payments/${id ?? ''}`);

    const retry = await checkout(`${prefix}lost`);
    expect(retry.status).toBe(202);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body).toEqual(first.body);
    expect(await cibaRequests()).toBe(asked + 1);
    // The client secret answered is the payment's own.
    const read = await request(app)
      .get(`/payments/${id ?? ''}`)
      .set('authorization', `Bearer ${first.body.client_secret}`);
    expect(read.status).toBe(200);
  });

  test('when the create is sent again after it ran, then the checkout answers the payment it made, not an error', async () => {
    const asked = await cibaRequests();
    faults.createSentTwice = 1;
    const first = await checkout(`${prefix}resent`);
    expect(first.status).toBe(202);
    expect(first.body.id).toBe(created.at(-1));
    expect((await checkout(`${prefix}resent`)).body.id).toBe(first.body.id);
    expect(await cibaRequests()).toBe(asked + 1);
  });

  test('when the store cannot tell for a while, then retries get 409 with Retry-After until it is settled, then the same payment', async () => {
    const asked = await cibaRequests();
    faults.createRunsThenFails = 1;
    faults.settleFails = 3;
    const first = await checkout(`${prefix}doubt`);
    expect(first.status).toBe(503);
    const id = created.at(-1);
    const answers: number[] = [];
    const replay = await waitFor(
      async () => {
        const res = await checkout(`${prefix}doubt`);
        answers.push(res.status);
        if (res.status === 409) expect(res.headers['retry-after']).toBeDefined();
        return res.status === 202 ? res : undefined;
      },
      10_000,
      'the settled checkout to be replayed',
      100,
    );
    expect(replay.body.id).toBe(id);
    expect(answers.filter((s) => s !== 409 && s !== 202)).toEqual([]);
    expect(created.filter((c) => c === id)).toHaveLength(1);
    expect(await cibaRequests()).toBe(asked + 1);
  });

  test('when the create never ran, then its id is voided and the retry runs afresh: one payment, the first can never appear', async () => {
    faults.createFailsBeforeRunning = 1;
    const first = await checkout(`${prefix}never`);
    expect(first.status).toBe(503);
    const voided = created.at(-1) ?? '';

    const retry = await checkout(`${prefix}never`);
    expect(retry.status).toBe(202);
    expect(retry.body.id).not.toBe(voided);
    expect(await parts.store.get(voided)).toBeNull();
    const late = pendingTestPayment(Date.now(), { id: voided });
    expect(await parts.stateMachine.create(late, { member: workItem.poll(voided), at: 0 })).not.toBe('ok');
  });

  test('when a request outlives its hold and a retry takes its key over, then it answers 409 with Retry-After and the key answers the retry', async () => {
    let retried: request.Response | undefined;
    faults.beforeCreate = async () => {
      // The request outlived its hold just before its create: a retry takes the claim over and voids its id.
      for (const k of await scanKeys(parts.redis, `${prefix}svc:idem:*`))
        if ((await parts.redis.hget(k, 'state')) === 'in_flight') await parts.redis.hset(k, 'held_until', 0);
      retried = await checkout(`${prefix}outlived`);
    };
    const first = await checkout(`${prefix}outlived`);
    expect(first.status).toBe(409); // before: 500 internal_error
    expect(first.body.code).toBe('idempotency_key_in_use');
    expect(first.headers['retry-after']).toBeDefined();
    expect(retried?.status).toBe(202);
    const replay = await checkout(`${prefix}outlived`);
    expect(replay.status).toBe(202);
    expect(replay.body.id).toBe(retried?.body.id);
  });

  test('when no replica acknowledges the claim note in time, then 503 with Retry-After, the bank is not asked and the key is free', async () => {
    const wanting = buildParts(
      loadConfig({ ...env, REDIS_WAIT_REPLICAS: String(TOO_MANY), REDIS_WAIT_TIMEOUT_MS: '50' }),
      {
        logger: createLogger('silent'),
        metrics: createMetrics({ defaultMetrics: false }),
      },
    );
    try {
      const asked = await cibaRequests();
      const res = await request(createApiApp(wanting, { isDraining: () => false }))
        .post('/checkout')
        .set('idempotency-key', `${prefix}unreplicated`)
        .send({ items: [{ sku: 'tea-01', quantity: 1 }], login_hint: 'user' });
      expect(res.status).toBe(503); // before: 202, the phone asked on a note a failover could lose
      expect(res.body.code).toBe('store_unavailable');
      expect(res.headers['retry-after']).toBeDefined();
      expect(await cibaRequests()).toBe(asked);
      const retry = await checkout(`${prefix}unreplicated`);
      expect(retry.status).toBe(202);
      expect(retry.headers['idempotent-replayed']).toBeUndefined();
    } finally {
      await closeParts(wanting, { cutBankCalls: true });
    }
  });
});
