import { api, waitFor } from '../support/api.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { startTestService, type SandboxService } from '../support/service.js';

const CART = { items: [{ sku: 'tea-01', quantity: 1 }], login_hint: 'user' };

/**
 * Redis goes away while payments are pending (issue 5): the API answers 503 problem+json with
 * Retry-After at once, readiness fails, nothing is sent to the bank for a checkout it cannot
 * store; when Redis is back (its append-only file intact) every pending payment resumes and
 * completes, with one transfer each.
 */
describe('Redis restart during pending payments', () => {
  let redis: PrivateRedis;
  let sys: SandboxService;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    sys = await startTestService({
      bank: { sandbox: { interval: 1 } },
      env: {
        REDIS_URL: redis.url,
        // Off, so nothing but the checkout's own store check keeps a request from reaching the bank.
        RATE_LIMIT_CHECKOUT_PER_MINUTE: '0',
        RATE_LIMIT_LOGIN_HINT_PER_MINUTE: '0',
      },
    });
  }, 30_000);

  afterAll(async () => {
    await redis.start().catch(() => undefined); // so the service closes its connections cleanly
    await sys.close();
    await redis.destroy();
  });

  test('503 with Retry-After and failing /readyz while down; every pending payment completes once it is back', async () => {
    const shop = { authorization: `Bearer ${sys.env.SHOP_API_KEY}` };
    const created: { id: string; binding_message: string }[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await api(sys.url, 'POST', '/checkout', { body: CART });
      expect(res.status).toBe(202);
      created.push(res.json);
    }
    const requests = await waitFor(async () => {
      const pending = await sys.bank.pending('user');
      return pending.length >= created.length ? pending : undefined;
    });
    expect((await api(sys.url, 'GET', '/readyz')).status).toBe(200);

    await redis.kill();
    const downAt = Date.now();

    // Every Redis-backed route answers 503 store_unavailable, quickly, with Retry-After.
    const checks = [
      await api(sys.url, 'POST', '/checkout', { body: CART }),
      await api(sys.url, 'GET', `/payments/${created[0]!.id}`, { headers: shop }),
      await api(sys.url, 'POST', `/payments/${created[1]!.id}/cancel`, { headers: shop }),
    ];
    for (const r of checks) {
      expect(r.status).toBe(503);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(r.headers['retry-after']).toMatch(/^\d+$/);
      expect(r.json).toMatchObject({ code: 'store_unavailable', status: 503 });
      expect(JSON.stringify(r.json)).not.toMatch(/at .*\.js|Error:|ioredis|node_modules/);
    }
    expect(Date.now() - downAt).toBeLessThan(5000);
    const ready = await api(sys.url, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.json.checks.redis).toBe(false);
    // The refused checkout reached no bank: no push to the customer's phone for a payment that does not exist.
    expect(await sys.bank.pending('user')).toHaveLength(created.length);

    // The customers approve while the store is down; the worker cannot claim anything meanwhile: it
    // has looked for work since the approvals (and failed), and no transfer was made.
    const failedClaims = () => sys.logs.filter((l) => l.includes('claiming work failed')).length;
    const failedBefore = failedClaims();
    for (const r of requests) await sys.bank.approve(r.id);
    await waitFor(() => failedClaims() > failedBefore, 10_000, 'a claim attempt after the approvals');
    expect(await sys.bank.transfers()).toHaveLength(0);

    await redis.start();
    await waitFor(
      async () => (await api(sys.url, 'GET', '/readyz')).status === 200,
      15_000,
      'readiness after the restart',
    );
    const done = await waitFor(
      async () => {
        const all = await Promise.all(
          created.map(async (p) => (await api(sys.url, 'GET', `/payments/${p.id}`, { headers: shop })).json),
        );
        return all.every((p) => p?.status === 'succeeded') ? all : undefined;
      },
      30_000,
      'every pending payment to succeed after the restart',
    );
    expect(done).toHaveLength(created.length);
    const transfers = await sys.bank.transfers();
    for (const p of created) expect(transfers.filter((t) => t.idempotencyKey === p.id)).toHaveLength(1);
    expect(transfers).toHaveLength(created.length);

    // And the API takes new checkouts again.
    expect((await api(sys.url, 'POST', '/checkout', { body: CART })).status).toBe(202);
  }, 90_000);
});
