import { systemClock } from '../../src/clock.js';
import { createLogger } from '../../src/logger.js';
import { createWorkerRegistry } from '../../src/jobs/shard-coverage.js';
import { createKeys } from '../../src/store/keys.js';
import { createRedis, type RedisClient } from '../../src/store/redis.js';
import { waitFor } from '../support/api.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { deleteKeysWithPrefix } from '../support/redis.js';
import { captureLogs, uniquePrefix } from '../support/system.js';

/**
 * The live-worker registry renews its entry every few seconds; while the store is away every
 * renewal fails. The log says so once when they start failing and once when they succeed again,
 * not once a tick (a fleet of workers during a long outage would flood the logs).
 */
describe('worker registry renewals while the store is away', () => {
  const prefix = uniquePrefix('registry');
  let proxy: FaultProxy;
  let redis: RedisClient;

  beforeAll(async () => {
    proxy = await startFaultProxy();
    proxy.setUpstream(6379);
    redis = createRedis(`redis://127.0.0.1:${String(proxy.port)}`, { retryStrategy: () => 20 });
    await redis.ping();
  });
  afterAll(async () => {
    redis.disconnect();
    await proxy.close();
    await deleteKeysWithPrefix(prefix);
  });

  test('when renewals fail for many ticks, then one warning when they start and one line when they recover', async () => {
    // Every renewal is one MULTI on this client: counted, so the test knows how many ticks passed.
    let renewals = 0;
    const counted = new Proxy(redis, {
      get(target, property, receiver) {
        if (property === 'multi') renewals++;
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    const logs = captureLogs();
    const registry = createWorkerRegistry({
      redis: counted,
      keys: createKeys(prefix),
      clock: systemClock,
      timing: { renewEveryMs: 20, ttlMs: 1000 },
    });
    await registry.join(() => undefined, createLogger('info', logs.stream));
    expect(registry.live()).toEqual([registry.id]);
    const lines = (text: string) => logs.lines.filter((l) => l.includes(text)).length;

    proxy.setMode('reset');
    await waitFor(() => registry.live() === null, 5000, 'a renewal to fail');
    const failedAt = renewals;
    await waitFor(() => renewals >= failedAt + 10, 5000, 'ten more failed renewals');
    expect(registry.live()).toBeNull();
    expect(lines('worker registry not renewed')).toBe(1);

    proxy.setMode('pass');
    await waitFor(() => registry.live() !== null, 5000, 'a renewal to succeed again');
    const backAt = renewals;
    await waitFor(() => renewals >= backAt + 5, 5000, 'five more renewals');
    expect(lines('worker registry renewed again')).toBe(1);
    expect(lines('worker registry not renewed')).toBe(1);
    const recovered = JSON.parse(logs.lines.find((l) => l.includes('renewed again')) ?? '{}') as { failures?: number };
    expect(recovered.failures).toBeGreaterThanOrEqual(10);
    await registry.leave();
  });
});
