import { api, waitFor, waitForStatus } from '../support/api.js';
import { startTestService, type SandboxService } from '../support/service.js';

/** Retention (issue 5): finished payments expire after PAYMENT_RETENTION_HOURS; pending ones are kept. */
describe('retention of finished payments', () => {
  let sys: SandboxService;
  beforeAll(async () => {
    sys = await startTestService({ bank: { sandbox: { interval: 1 } }, env: { PAYMENT_RETENTION_HOURS: '2' } });
  });
  afterAll(async () => {
    await sys.close();
  });

  test('a pending payment has no expiry; once terminal, its hash (with its event log) expires after the retention', async () => {
    const res = await api(sys.url, 'POST', '/checkout', {
      body: { items: [{ sku: 'tea-01', quantity: 1 }], login_hint: 'user' },
    });
    const payment = res.json as { id: string; client_secret: string; binding_message: string };
    const { redis, keys } = sys.service;
    expect(await redis.ttl(keys.payment(payment.id))).toBe(-1);
    const req = await waitFor(async () =>
      (await sys.bank.pending('user')).find((p) => p.bindingMessage === payment.binding_message),
    );
    await sys.bank.deny(req.id);
    await waitForStatus(sys.url, payment.id, payment.client_secret, ['failed']);
    // The event log is part of the payment hash (fields e1, e2, …), so it expires with it.
    expect(await redis.hget(keys.payment(payment.id), 'e2')).toMatch(/^f[0-9a-z]+ access_denied$/);
    const ttl = await redis.ttl(keys.payment(payment.id));
    expect(ttl).toBeGreaterThan(2 * 3600 - 60);
    expect(ttl).toBeLessThanOrEqual(2 * 3600);
    // Nothing left scheduled for it.
    expect(await redis.zscore(keys.dueOf(`poll:${payment.id}`).key, `poll:${payment.id}`)).toBeNull();
    expect(await redis.zscore(keys.scheduleOf(`poll:${payment.id}`).leases, `poll:${payment.id}`)).toBeNull();
  });
});
