import { api, waitFor, waitForStatus } from '../support/api.js';
import { startFaultProxy, type FaultMode, type FaultProxy } from '../support/fault-proxy.js';
import { killAll, spawnService, type ServiceProcess } from '../support/processes.js';
import { startTestService, type SandboxService } from '../support/service.js';

const CART = { items: [{ sku: 'cup-01', quantity: 1 }], login_hint: 'user' };

/**
 * The bank's payment API misbehaving (issue 5): 500s, timeouts, reset connections, and the answer
 * lost after the bank moved the money. Every case retries with backoff under the same
 * Idempotency-Key and ends with exactly one transfer and the bank's one payment id recorded.
 */
describe('bank payment API faults', () => {
  let proxy: FaultProxy;
  let sys: SandboxService;
  const procs = new Set<ServiceProcess>();

  async function startSystemBehindProxy(role: 'all' | 'api'): Promise<SandboxService> {
    const s = await startTestService({
      bank: { sandbox: { interval: 1 } },
      role,
      env: {
        BANK_API_URL: `https://localhost:${proxy.port}/api`,
        BANK_TIMEOUT_MS: '1000',
        WEBHOOK_TIMEOUT_MS: '1000',
        WORKER_LEASE_MS: '4000',
      },
    });
    proxy.setUpstream(Number(new URL(s.bank.issuer).port));
    return s;
  }

  async function approvedCheckout(s: SandboxService): Promise<{ id: string; client_secret: string }> {
    const res = await api(s.url, 'POST', '/checkout', { body: CART });
    expect(res.status).toBe(202);
    const payment = res.json as { id: string; client_secret: string; binding_message: string };
    const req = await waitFor(async () =>
      (await s.bank.pending('user')).find((p) => p.bindingMessage === payment.binding_message),
    );
    await s.bank.approve(req.id);
    return payment;
  }

  const retries = (s: SandboxService, id: string) =>
    s.logs.filter((l) => l.includes(id) && l.includes('will be retried'));

  async function expectOneTransfer(s: SandboxService, payment: { id: string; client_secret: string }) {
    const done = await waitForStatus(s.url, payment.id, payment.client_secret, ['succeeded', 'failed'], 30_000);
    expect(done.status).toBe('succeeded');
    const transfers = (await s.bank.transfers()).filter((t) => t.idempotencyKey === payment.id);
    expect(transfers).toHaveLength(1);
    expect((await s.service.store.get(payment.id))?.bankPaymentId).toBe(transfers[0]!.bankPaymentId);
  }

  beforeAll(async () => {
    proxy = await startFaultProxy();
    sys = await startSystemBehindProxy('all');
  }, 30_000);

  afterAll(async () => {
    await killAll(procs);
    await sys.close();
    await proxy.close();
  });

  afterEach(() => {
    proxy.setMode('pass');
  });

  test('when the payment API answers 500 three times, then it is retried with backoff and pays once', async () => {
    await sys.bank.failNextPayments(3);
    const payment = await approvedCheckout(sys);
    await expectOneTransfer(sys, payment);
    const lines = retries(sys, payment.id).map((l) => JSON.parse(l) as { reason: string; attempt: number });
    expect(lines.map((l) => l.reason)).toEqual(['http_500', 'http_500', 'http_500']);
    expect(lines.map((l) => l.attempt)).toEqual([1, 2, 3]);
  }, 40_000);

  test.each<[string, FaultMode]>([
    ['times out', 'hang'],
    ['resets the connection', 'reset'],
  ])(
    'when the payment API %s, then the call is retried and pays once when it recovers',
    async (_what, mode) => {
      proxy.setMode(mode);
      const payment = await approvedCheckout(sys);
      await waitFor(() => Promise.resolve(retries(sys, payment.id).length >= 2 || undefined), 20_000, 'two retries');
      expect(await sys.bank.transfers()).not.toContainEqual(expect.objectContaining({ idempotencyKey: payment.id }));
      proxy.setMode('pass');
      await expectOneTransfer(sys, payment);
      for (const l of retries(sys, payment.id)) expect(JSON.parse(l).reason).toMatch(/^network/);
    },
    40_000,
  );

  test('when the bank moved the money but its answer was lost, then the retry gets the same bank payment id', async () => {
    proxy.setMode('lose_response');
    const payment = await approvedCheckout(sys);
    const transfer = await waitFor(
      async () => (await sys.bank.transfers()).find((t) => t.idempotencyKey === payment.id),
      20_000,
      'the bank to act',
    );
    await waitFor(() => Promise.resolve(retries(sys, payment.id).length >= 1 || undefined), 20_000, 'a retry');
    proxy.setMode('pass');
    await expectOneTransfer(sys, payment);
    expect((await sys.service.store.get(payment.id))?.bankPaymentId).toBe(transfer.bankPaymentId);
  }, 40_000);

  test('when a worker process dies after the bank accepted but before recording, then the next worker records the same bank id', async () => {
    const apiOnly = await startSystemBehindProxy('api');
    try {
      const env = { ...apiOnly.env, BANK_TIMEOUT_MS: '3000', WORKER_LEASE_MS: '4000' };
      const first = await spawnService('worker-a', 'worker', env);
      procs.add(first);
      proxy.setMode('lose_response');
      const payment = await approvedCheckout(apiOnly);
      const transfer = await waitFor(
        async () => (await apiOnly.bank.transfers()).find((t) => t.idempotencyKey === payment.id),
        20_000,
        'the bank to act',
      );
      // The worker is waiting for the answer: kill it now, before it can record anything.
      first.child.kill('SIGKILL');
      await first.exited;
      expect((await apiOnly.service.store.get(payment.id))?.status).toBe('processing');
      proxy.setMode('pass');
      const second = await spawnService('worker-b', 'worker', env);
      procs.add(second);
      await expectOneTransfer(apiOnly, payment);
      expect((await apiOnly.service.store.get(payment.id))?.bankPaymentId).toBe(transfer.bankPaymentId);
    } finally {
      await killAll(procs);
      await apiOnly.close();
    }
  }, 60_000);
});
