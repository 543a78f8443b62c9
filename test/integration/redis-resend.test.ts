import { startFaultProxy } from '../support/fault-proxy.js';
import { waitFor } from '../support/api.js';
import { deleteKeysWithPrefix } from '../support/redis.js';
import { uniquePrefix } from '../support/system.js';
import { createRedis, createStoreClient, isStoreUnavailableError } from '../../src/store/redis.js';

/**
 * A command that timed out may have run: a store client must not send it again after a reconnect
 * (security review #4), or work the caller gave up on (503, a back-off) runs later, or twice.
 * Real Redis behind a real TCP proxy that swallows the command.
 */
const prefix = uniquePrefix('resend');
afterAll(async () => {
  await deleteKeysWithPrefix(prefix);
});

test('when a command times out unanswered, then it does not run later once the connection is back', async () => {
  const proxy = await startFaultProxy();
  proxy.setUpstream(6379);
  const store = createStoreClient({
    redisUrl: `redis://127.0.0.1:${proxy.port}`,
    redisClusterNodes: null,
    redisCommandTimeoutMs: 300,
  });
  const direct = createRedis('redis://127.0.0.1:6379');
  try {
    await store.ping();
    proxy.setMode('hang');
    const err: unknown = await store.incr(`${prefix}count`).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isStoreUnavailableError(err)).toBe(true); // callers treat it as the store being away

    proxy.setMode('reset');
    proxy.setMode('pass');
    await waitFor(async () => (await store.ping().catch(() => null)) === 'PONG', 10_000, 'the store client back');
    expect(await direct.get(`${prefix}count`)).toBeNull(); // before: '1', the timed-out INCR sent again and run
  } finally {
    store.disconnect();
    direct.disconnect();
    await proxy.close();
  }
}, 30_000);
