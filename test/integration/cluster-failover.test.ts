import type { SandboxBank } from '../../src/sandbox/bank.js';
import { decodeEventLog } from '../../src/payments/event-log.js';
import { createKeys } from '../../src/store/keys.js';
import { api, waitFor } from '../support/api.js';
import { startPrivateCluster, type PrivateCluster } from '../support/private-cluster.js';
import { killAll, serviceEnv, spawnService, type ServiceProcess } from '../support/processes.js';
import { deleteKeysWithPrefix } from '../support/redis.js';
import { startTestBank, testCertificates, uniquePrefix } from '../support/system.js';

/**
 * Failover under load (issue 12.2): an API and a worker process on a 6-node Redis Cluster of the
 * test's own; while checkouts come in and payments are polled and paid, the primary serving shard 0
 * is SIGKILLed. Its replica takes over by itself; meanwhile the API answers 503 with Retry-After,
 * never 500; afterwards every payment has exactly one terminal status and at most one transfer.
 *
 * Why a 503 is seen at all: a request for a slot whose primary is dead fails within the store
 * client's bound (maxRedirections × retryDelayOnFailover, store/redis.ts), well before the replica
 * is promoted (cluster-node-timeout 1 s plus the election); a prober reading payments that live on
 * the victim's slots from the kill to the promotion sees those answers, and how long each took.
 */
const PAYMENTS = Number(process.env.FAILOVER_PAYMENTS ?? 60);
const BASE_PORT = 7111;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Redis Cluster failover under load', () => {
  const prefix = uniquePrefix('failover');
  const procs = new Set<ServiceProcess>();
  let cluster: PrivateCluster;
  let bank: SandboxBank;
  let env: Record<string, string>;

  beforeAll(async () => {
    cluster = startPrivateCluster(BASE_PORT);
    bank = await startTestBank(prefix, { autoApprove: 'approve', approvalDelayMs: 1000 });
    env = serviceEnv({
      bank,
      certs: testCertificates(),
      prefix: `${prefix}svc:`,
      extra: {
        REDIS_CLUSTER_NODES: cluster.seeds,
        WORKER_LEASE_MS: '3000',
        BANK_TIMEOUT_MS: '5000',
        WORKER_CONCURRENCY: '64',
        SHUTDOWN_TIMEOUT_MS: '1000',
      },
    });
  }, 60_000);

  afterAll(async () => {
    await killAll(procs);
    await bank.close();
    await deleteKeysWithPrefix(prefix);
    await cluster.heal();
    cluster.stop();
  }, 60_000);

  test('the cost of WAIT: a write acknowledged by a replica, against one that is not', async () => {
    const admin = cluster.admin();
    const key = `${prefix}{s0}wait-probe`;
    const time = async (write: () => Promise<unknown>) => {
      const took: number[] = [];
      for (let i = 0; i < 300; i++) {
        const t = process.hrtime.bigint();
        await write();
        took.push(Number(process.hrtime.bigint() - t) / 1000);
      }
      took.sort((a, b) => a - b);
      return { p50Us: Math.round(took[150] ?? 0), p99Us: Math.round(took[296] ?? 0) };
    };
    await admin.set(key, '0');
    const plain = await time(() => admin.hset(`${key}:h`, 'status', 'processing'));
    let acked = 0;
    const waited = await time(async () => {
      const r = await admin.pipeline().hset(`${key}:h`, 'status', 'processing').call('WAIT', 1, 100).exec();
      acked += Number(r?.[1]?.[1] ?? 0);
    });
    console.log(`WAIT cost: ${JSON.stringify({ plain, waited, acknowledged: `${acked}/300` })}`);
    admin.disconnect();
    // On a loaded machine a replica may miss the 100 ms now and then; the figure says how often.
    expect(acked).toBeGreaterThan(240);
  });

  test('a primary is killed: 503s with Retry-After meanwhile, no 500, every payment terminal once, one transfer each', async () => {
    const apiProc = await spawnService('api', 'api', env);
    procs.add(apiProc);
    procs.add(await spawnService('worker', 'worker', env));
    const url = apiProc.url ?? '';
    const admin = cluster.admin();
    const slot = await admin.cluster('KEYSLOT', '{s0}');
    const victim = await cluster.primaryOf(slot);
    // The payments stored on the victim's slots (their shard's hash tag is served by it).
    const shardKeys = createKeys('');
    const victimShards = new Set<number>();
    for (let k = 0; k < 16; k++) {
      if ((await cluster.primaryOf(await admin.cluster('KEYSLOT', `{s${k}}`))) === victim) victimShards.add(k);
    }
    const onVictim = () => created.filter((p) => victimShards.has(shardKeys.shardOf(p.id)));

    const answers = new Map<string, number>(); // "status code" → count
    const badAnswers: string[] = [];
    const record = (res: { status: number; headers: Record<string, unknown>; json: { code?: string } | null }) => {
      const key = `${res.status} ${res.json?.code ?? ''}`.trim();
      answers.set(key, (answers.get(key) ?? 0) + 1);
      if (res.status >= 500 && (res.status !== 503 || !res.headers['retry-after'])) badAnswers.push(key);
    };
    const created: { id: string; secret: string }[] = [];
    let killedAt = 0;
    let firstCheckoutAfterKill = 0;

    // Checkouts over ~8 s, four at a time; a 503 is retried with the same Idempotency-Key.
    let next = 0;
    const shoppers = Array.from({ length: 4 }, async () => {
      while (next < PAYMENTS) {
        const n = next++;
        for (let attempt = 0; attempt < 30; attempt++) {
          const res = await api(url, 'POST', '/checkout', {
            body: { items: [{ sku: 'tea-01', quantity: 1 }], login_hint: 'user' },
            headers: { 'idempotency-key': `${prefix}${n}` },
          });
          record(res);
          if (res.status === 202) {
            created.push({ id: res.json.id as string, secret: res.json.client_secret as string });
            if (killedAt && !firstCheckoutAfterKill) firstCheckoutAfterKill = Date.now();
            break;
          }
          await sleep(300);
        }
        await sleep(400);
      }
    });
    // Readers: the storefront polling its payments.
    const state = { reading: true };
    const reader = (async () => {
      while (state.reading) {
        const p = created[Math.floor(Math.random() * created.length)];
        if (p) record(await api(url, 'GET', `/payments/${p.id}`, { headers: { authorization: `Bearer ${p.secret}` } }));
        await sleep(50);
      }
    })();

    await waitFor(
      () => Promise.resolve(created.length >= PAYMENTS / 4 || undefined),
      60_000,
      'a quarter of the checkouts',
    );
    expect(onVictim().length).toBeGreaterThan(0);
    const probes: { status: number; ms: number; retryAfter: unknown }[] = [];
    const probing = { on: true };
    const prober = (async () => {
      for (let i = 0; probing.on; i++) {
        const mine = onVictim();
        const p = mine[i % mine.length]!;
        const t = Date.now();
        const res = await api(url, 'GET', `/payments/${p.id}`, { headers: { authorization: `Bearer ${p.secret}` } });
        record(res);
        probes.push({ status: res.status, ms: Date.now() - t, retryAfter: res.headers['retry-after'] });
        await sleep(20);
      }
    })();

    cluster.kill(victim);
    killedAt = Date.now();
    const promoted = await waitFor(
      async () => {
        const primary = await cluster.primaryOf(slot).catch(() => victim);
        return primary !== victim ? primary : undefined;
      },
      30_000,
      'a replica to take over',
    );
    const recoveredMs = Date.now() - killedAt;
    // Until the API reads the victim's payments again.
    await waitFor(
      () => Promise.resolve(probes.slice(-3).every((r) => r.status === 200) || undefined),
      30_000,
      'reads again',
    );
    probing.on = false;
    await prober;
    const servedAgainMs = Date.now() - killedAt;
    await Promise.all(shoppers);
    expect(created).toHaveLength(PAYMENTS);
    // The promoted primary has no replica: no bank call is made for its payments (their note of the
    // call could not be WAITed for, see store/payment-store.ts) until the killed node is restarted
    // and rejoins as its replica, as a supervisor would restart it.
    await cluster.heal();
    const healedMs = Date.now() - killedAt;

    // Every payment ends, once.
    const keys = createKeys(env.REDIS_PREFIX ?? '');
    const terminal = new Set(['succeeded', 'failed', 'canceled']);
    const finals = await waitFor(
      async () => {
        const all = await Promise.all(created.map(async (p) => admin.hgetall(keys.payment(p.id))));
        return all.every((h) => terminal.has(h.status ?? '')) ? all : undefined;
      },
      90_000,
      'every payment to end',
    );
    state.reading = false;
    await reader;
    admin.disconnect();

    const transfers = await bank.transfers();
    const perPayment = new Map<string, number>();
    for (const t of transfers) perPayment.set(t.idempotencyKey, (perPayment.get(t.idempotencyKey) ?? 0) + 1);
    const terminalEvents = finals.map(
      (h) => decodeEventLog(h).filter((e) => e !== null && terminal.has(e.status)).length,
    );
    const figures = {
      payments: created.length,
      kills: 1,
      killedPort: victim,
      promotedPort: promoted,
      recoveredMs,
      servedAgainMs,
      healedMs,
      probes: probes.length,
      probes503: probes.filter((r) => r.status === 503).length,
      probeMaxMs: Math.max(...probes.map((r) => r.ms)),
      firstCheckoutAfterKillMs: firstCheckoutAfterKill ? firstCheckoutAfterKill - killedAt : null,
      succeeded: finals.filter((h) => h.status === 'succeeded').length,
      failed: finals.filter((h) => h.status === 'failed').map((h) => h.failure),
      transfers: transfers.length,
      doubled: [...perPayment.values()].filter((n) => n > 1).length,
      lost: finals.filter((h) => !terminal.has(h.status ?? '')).length,
      answers: Object.fromEntries(answers),
    };
    console.log(`failover figures: ${JSON.stringify(figures)}`);
    const internalErrors = apiProc.lines.filter((l) => l.includes('"internal_error"'));
    if (internalErrors.length > 0) console.log(`API internal errors:\n${internalErrors.join('\n')}`);

    expect(badAnswers).toEqual([]);
    // During the outage, reads of the victim's payments were answered 503 with Retry-After, each
    // within the store client's bound plus this machine's load (never held until the promotion).
    expect(probes.some((r) => r.status === 503 && r.retryAfter !== undefined)).toBe(true);
    expect(figures.probeMaxMs).toBeLessThan(3000);
    expect(answers.has('500')).toBe(false);
    expect(figures.lost).toBe(0);
    expect(figures.doubled).toBe(0);
    expect(terminalEvents.every((n) => n === 1)).toBe(true);
    for (const [i, h] of finals.entries()) {
      const id = created[i]?.id ?? '';
      expect(perPayment.get(id) ?? 0).toBe(h.status === 'succeeded' ? 1 : 0);
    }
    // The customers approved every payment: with the money transitions on a replica, none is lost.
    expect(figures.succeeded).toBe(PAYMENTS);
  }, 240_000);
});
