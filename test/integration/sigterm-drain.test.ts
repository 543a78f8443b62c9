import { Redis } from 'ioredis';
import type { SandboxBank } from '../../src/sandbox/bank.js';
import { createKeys } from '../../src/store/keys.js';
import { decodeStatus } from '../../src/store/payment-hash.js';
import { api, waitFor } from '../support/api.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { killAll, serviceEnv, spawnService, type ServiceProcess } from '../support/processes.js';
import { deleteKeysWithPrefix } from '../support/redis.js';
import { startTestBank, testCertificates, uniquePrefix } from '../support/system.js';

const SHUTDOWN_TIMEOUT_MS = 1500;
const LEASE_MS = 5000;

/**
 * SIGTERM with work in hand (issue 5): a ROLE=all process whose bank call hangs stops claiming,
 * answers /readyz 503 while it drains, exits within SHUTDOWN_TIMEOUT_MS, and the lease it leaves
 * behind expires and is taken over by another worker, which completes the payment once.
 */
describe('SIGTERM drain', () => {
  const prefix = uniquePrefix('drain');
  const procs = new Set<ServiceProcess>();
  let bank: SandboxBank;
  let proxy: FaultProxy;
  let redis: Redis;
  let env: Record<string, string>;

  beforeAll(async () => {
    const certs = testCertificates();
    proxy = await startFaultProxy();
    bank = await startTestBank(prefix);
    proxy.setUpstream(Number(new URL(bank.issuer).port));
    env = serviceEnv({
      bank: { issuer: bank.issuer, apiUrl: `https://localhost:${proxy.port}/api` },
      certs,
      prefix: `${prefix}svc:`,
      extra: {
        SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
        BANK_TIMEOUT_MS: '4000',
        WEBHOOK_TIMEOUT_MS: '1000',
        WORKER_LEASE_MS: String(LEASE_MS),
      },
    });
    redis = new Redis('redis://127.0.0.1:6379');
  }, 30_000);

  afterAll(async () => {
    await killAll(procs);
    await bank.close();
    await proxy.close();
    redis.disconnect();
    await deleteKeysWithPrefix(prefix);
  });

  test('readiness fails while draining, the process exits in time, its lease is taken over', async () => {
    const node = await spawnService('all', 'all', env);
    procs.add(node);
    const url = node.url!;
    expect((await api(url, 'GET', '/readyz')).status).toBe(200);

    proxy.setMode('hang');
    const res = await api(url, 'POST', '/checkout', {
      body: { items: [{ sku: 'tea-01', quantity: 1 }], login_hint: 'user' },
    });
    expect(res.status).toBe(202);
    const payment = res.json as { id: string; client_secret: string; binding_message: string };
    const req = await waitFor(async () =>
      (await bank.pending('user')).find((p) => p.bindingMessage === payment.binding_message),
    );
    await bank.approve(req.id);
    const member = `submit:${payment.id}`;
    const keys = createKeys(env.REDIS_PREFIX ?? '');
    const { leases } = keys.scheduleOf(member);
    const due = keys.dueOf(member).key;
    // Work in hand: the submit is leased and its bank call hangs.
    await waitFor(async () => (await redis.zscore(leases, member)) !== null, 10_000, 'the submit to be leased');

    const termAt = Date.now();
    node.child.kill('SIGTERM');
    const ready = await waitFor(
      async () => {
        const r = await api(url, 'GET', '/readyz');
        return r.status === 503 ? r : undefined;
      },
      1000,
      '/readyz to fail',
    );
    expect(ready.json).toMatchObject({ status: 'not_ready', checks: { accepting_work: false } });
    const exit = await node.exited;
    const tookMs = Date.now() - termAt;
    console.log(
      `drain: exited with ${String(exit.code)} after ${tookMs} ms (SHUTDOWN_TIMEOUT_MS ${SHUTDOWN_TIMEOUT_MS})`,
    );
    expect(exit.code).toBe(0);
    expect(tookMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 1000);

    // Nothing is lost: the cut bank call either handed the item back to the due set, or its lease is
    // left with a finite expiry (renewed while draining, no longer after), after which another worker takes it over.
    const leaseUntil = await redis.zscore(leases, member);
    const dueAt = await redis.zscore(due, member);
    expect([leaseUntil, dueAt].filter((v) => v !== null)).toHaveLength(1);
    if (leaseUntil !== null) expect(Number(leaseUntil)).toBeLessThanOrEqual(termAt + SHUTDOWN_TIMEOUT_MS + LEASE_MS);
    proxy.setMode('pass');
    const worker = await spawnService('worker', 'worker', env);
    procs.add(worker);
    const status = await waitFor(
      async () => {
        const s = decodeStatus(await redis.hget(keys.payment(payment.id), 'status'));
        return s === 'succeeded' || s === 'failed' ? s : undefined;
      },
      LEASE_MS + 10_000,
      'the payment to finish on the other worker',
    );
    expect(status).toBe('succeeded');
    expect((await bank.transfers()).filter((t) => t.idempotencyKey === payment.id)).toHaveLength(1);
    expect(await redis.zcard(leases)).toBe(0);
  }, 40_000);
});
