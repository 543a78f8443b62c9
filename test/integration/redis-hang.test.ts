import { api, waitFor } from '../support/api.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { startTestService, type TestService } from '../support/service.js';

/**
 * A Redis that accepts TCP but never answers (a partitioned primary, a hung host; issue 12, security
 * review): without a command timeout every request would wait for ever. With REDIS_COMMAND_TIMEOUT_MS
 * the API answers 503 store_unavailable with Retry-After within about that, readiness fails, the
 * worker backs off, and once Redis answers again everything works. The hang is a real TCP proxy in
 * front of a real redis-server that swallows what the service sends.
 */
describe('Redis that accepts connections and never answers', () => {
  let redis: PrivateRedis;
  let proxy: FaultProxy;
  let sys: TestService;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    proxy = await startFaultProxy();
    proxy.setUpstream(redis.port);
    sys = await startTestService({
      bank: 'none',
      env: {
        REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
        REDIS_CLUSTER_NODES: '',
        REDIS_COMMAND_TIMEOUT_MS: '500',
      },
    });
  }, 30_000);

  afterAll(async () => {
    proxy.setMode('reset');
    proxy.setMode('pass');
    await sys.close();
    await proxy.close();
    await redis.destroy();
  });

  test('the API answers 503 store_unavailable within about the command timeout, and recovers', async () => {
    const shop = { authorization: `Bearer ${sys.env.SHOP_API_KEY}` };
    expect((await api(sys.url, 'GET', '/payments/pay_aaaaaaaaaaaaaaaaaaaa', { headers: shop })).status).toBe(404);

    proxy.setMode('hang');
    const startedAt = Date.now();
    const answer = await Promise.race([
      api(sys.url, 'GET', '/payments/pay_aaaaaaaaaaaaaaaaaaaa', { headers: shop }),
      new Promise<null>((resolve) =>
        setTimeout(() => {
          resolve(null);
        }, 8000).unref(),
      ),
    ]);
    expect(answer).not.toBeNull(); // before: no answer at all while Redis stays silent
    expect(answer?.status).toBe(503);
    expect(answer?.json).toMatchObject({ code: 'store_unavailable' });
    expect(answer?.headers['retry-after']).toMatch(/^\d+$/);
    expect(Date.now() - startedAt).toBeLessThan(3000);
    expect((await api(sys.url, 'GET', '/readyz')).status).toBe(503);
    // The worker is not stuck either: its claims fail and it backs off, then tries again.
    await waitFor(() => sys.logs.some((l) => l.includes('claiming work failed')), 10_000, 'a failed claim');

    // The connections die (the partition heals with a reset): the client reconnects by itself.
    proxy.setMode('reset');
    proxy.setMode('pass');
    await waitFor(
      async () => (await api(sys.url, 'GET', '/payments/pay_aaaaaaaaaaaaaaaaaaaa', { headers: shop })).status === 404,
      10_000,
      'the API to answer from Redis again',
    );
  }, 30_000);
});
