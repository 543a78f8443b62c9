import { rmSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { PaymentRecord } from '../../src/payments/payment.js';
import { newPaymentId } from '../../src/payments/payment-id.js';
import { createStateMachine } from '../../src/payments/state-machine.js';
import { createKeys } from '../../src/store/keys.js';
import { createPaymentStore } from '../../src/store/payment-store.js';
import { createRedisCluster, type RedisClient } from '../../src/store/redis.js';
import { waitFor } from '../support/api.js';
import { startPrivateCluster, type PrivateCluster } from '../support/private-cluster.js';
import { pendingTestPayment } from '../support/payments.js';
import { uniquePrefix } from '../support/system.js';

const BASE_PORT = 7161;

/**
 * A money write and its WAIT go in one pipeline on the payment's node (payment-store.ts). While the
 * payment's slot is being migrated and its keys already sit on the importing node, the source node
 * answers the write with ASK, and ioredis does not follow a redirect inside a pipeline whose other
 * command (WAIT) succeeded: the write must go to the importing node after ASKING, with its WAIT on
 * that node (security review of issue 12). A private 6-node cluster; the slot is left mid-migration.
 */
describe('a money transition during a slot migration (ASK inside the WAIT pipeline)', () => {
  const prefix = uniquePrefix('askwait');
  const keys = createKeys(prefix);
  const clock = { now: () => Date.now() };
  let cluster: PrivateCluster;
  let redis: RedisClient;

  beforeAll(() => {
    cluster = startPrivateCluster(BASE_PORT);
    redis = createRedisCluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
  }, 60_000);

  afterAll(() => {
    redis.disconnect();
    cluster.stop();
    // Its nodes.conf would keep the slot half migrated for the next run.
    rmSync(`/tmp/ciba-redis-cluster-${BASE_PORT}`, { recursive: true, force: true });
  });

  const node = (port: number) => new Redis(port, { lazyConnect: false });

  /** IMPORTING/MIGRATING, then every key of `slot` moved to the target; the slot stays with the source. */
  async function halfMigrate(slot: number): Promise<{ from: number; to: number }> {
    const from = await cluster.primaryOf(slot);
    const primaries = new Set([
      await cluster.primaryOf(0),
      await cluster.primaryOf(8192),
      await cluster.primaryOf(16383),
    ]);
    const to = [...primaries].find((p) => p !== from)!;
    const [source, target] = [node(from), node(to)];
    try {
      await target.cluster('SETSLOT', slot, 'IMPORTING', await source.cluster('MYID'));
      await source.cluster('SETSLOT', slot, 'MIGRATING', await target.cluster('MYID'));
      const inSlot = await source.cluster('GETKEYSINSLOT', slot, 1000);
      await source.call('MIGRATE', '127.0.0.1', to, '', 0, 5000, 'KEYS', ...inSlot);
      expect(await source.cluster('COUNTKEYSINSLOT', slot)).toBe(0);
    } finally {
      source.disconnect();
      target.disconnect();
    }
    return { from, to };
  }

  test('when the payment is already on the importing node, then authorized and the bank call note are written there and acknowledged by its replica', async () => {
    const unreplicated: string[] = [];
    const store = createPaymentStore({
      redis,
      keys,
      retentionSeconds: 60,
      durability: { replicas: 1, timeoutMs: 500 },
      onUnreplicated: (status) => unreplicated.push(status),
    });
    const machine = createStateMachine({ store, clock, webhookTargets: { global: false } });
    const payment = pendingPayment(newPaymentId(0));
    expect(await machine.create(payment, { member: `poll:${payment.id}`, at: clock.now() + 60_000 })).toBe('ok');
    // Every key of the transition script exists (as under load: something leased, something pinged). A
    // key that exists nowhere cannot be told apart from one not migrated yet: TRYAGAIN until the
    // migration ends, which the retries and the caller's back-off cover.
    const shard = keys.scheduleOf(payment.id);
    await redis.zadd(shard.leases, clock.now() + 60_000, 'poll:other');
    await redis.sadd(shard.pinged, 'poll:other');
    await redis.zadd(shard.legacyDue, clock.now() + 60_000, 'poll:other');
    const slot = await redis.cluster('KEYSLOT', keys.payment(payment.id));
    const { from, to } = await halfMigrate(slot);
    const target = node(to);
    // A fresh cluster's replica may still be in its first sync: WAIT counts it once it is online.
    const replicaOnline = async () => /slave0:.*state=online/.test(await target.info('replication'));
    await waitFor(replicaOnline, 20_000, 'the importing node to have its replica online');

    // Before: ASK on every try (the slot map does not change mid-migration) until the tries ran out.
    expect(
      await machine.transition(payment, 'authorized', {
        fields: { sealedAccessToken: 'sealed' },
        schedule: { member: `submit:${payment.id}`, at: clock.now() },
      }),
    ).toBe('ok');
    const authorized = await store.get(payment.id);
    expect(authorized?.status).toBe('authorized');
    expect(await machine.transition(authorized!, 'processing')).toBe('ok');
    expect(await store.recordBankCall(payment.id, clock.now())).toBe('noted');
    expect(unreplicated).toEqual([]);

    const written = await store.get(payment.id); // a single read follows ASK by itself
    expect(written).toMatchObject({ status: 'processing', sealedAccessToken: 'sealed' });
    expect(written?.bankCalledAt).not.toBeNull();
    // The writes went to the importing node; nothing was recreated on the source.
    const source = node(from);
    try {
      await target.call('ASKING');
      expect(await target.exists(keys.payment(payment.id))).toBe(1);
      expect(await source.cluster('COUNTKEYSINSLOT', slot)).toBe(0);
    } finally {
      target.disconnect();
      source.disconnect();
    }
  }, 60_000);

  test('a pipeline answered ASK after its redirection budget ran out still gets one reply per command', async () => {
    // The budget already spent when the ASK comes (as after the TRYAGAIN rounds of a half-moved
    // multi-key script): ioredis resolved such a pipeline with fewer replies than commands, and an
    // auto-pipelined batch then threw in a nextTick, which ended the worker (store/cluster-ask-budget.ts).
    const spentBudget = createRedisCluster(
      cluster.ports.map((port) => ({ host: '127.0.0.1', port })),
      { maxRedirections: 0 },
    );
    try {
      const tag = `{${prefix}budget}`;
      await redis.set(`${tag}a`, 'one');
      await redis.set(`${tag}b`, 'two');
      await halfMigrate(await redis.cluster('KEYSLOT', `${tag}a`));

      const replies = await spentBudget.pipeline().get(`${tag}a`).get(`${tag}b`).exec();
      expect(replies).toEqual([
        [null, 'one'],
        [null, 'two'],
      ]);
      spentBudget.options.enableAutoPipelining = true;
      expect(await Promise.all([spentBudget.get(`${tag}a`), spentBudget.get(`${tag}b`)])).toEqual(['one', 'two']);
    } finally {
      spentBudget.disconnect();
    }
  }, 60_000);

  const pendingPayment = (id: string): PaymentRecord => pendingTestPayment(clock.now(), { id });
});
