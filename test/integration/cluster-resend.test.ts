import { rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Cluster } from 'ioredis';
import { waitFor } from '../support/api.js';
import { startPrivateCluster, type PrivateCluster } from '../support/private-cluster.js';
import { uniquePrefix } from '../support/system.js';
import { createRedisCluster, isStoreUnavailableError, type RedisClient } from '../../src/store/redis.js';

const BASE_PORT = 7141;

/** INCRs KEYS[1], then holds its node ARGV[1] ms: a command that runs, and whose reply comes late. */
const INCR_THEN_WAIT = `
local count = redis.call('INCR', KEYS[1])
local t0 = redis.call('TIME')
repeat
  local t = redis.call('TIME')
until (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) >= tonumber(ARGV[1]) * 1000
return count`;

/**
 * What redis-resend.test.ts shows one Redis does not do, a cluster client does (ioredis 5.11): a
 * command whose node connection closes unanswered is sent again, to the slot's owner, even when it
 * already ran and after the caller was told it timed out. A node's connection has no retryStrategy
 * (cluster/ConnectionPool.js), so closing rejects every command it holds with "Connection is
 * closed." (redis/event_handler.js close()), and the cluster takes that for a failover and sends the
 * command again (cluster/index.js handleError), whatever `autoResendUnfulfilledCommands` says. That
 * is why every store write must be safe to run twice (store-replay.test.ts). A private cluster: the
 * script holds its node for a moment.
 */
describe('a cluster client and a command whose connection closes', () => {
  let cluster: PrivateCluster;
  let store: RedisClient;

  beforeAll(() => {
    cluster = startPrivateCluster(BASE_PORT);
    // The store client's own options (createStoreClient), with a short command timeout.
    store = createRedisCluster(
      cluster.ports.map((port) => ({ host: '127.0.0.1', port })),
      {},
      { commandTimeout: 100, connectTimeout: 5000, keepAlive: 5000, autoResendUnfulfilledCommands: false },
    );
  }, 60_000);

  afterAll(() => {
    store.disconnect();
    cluster.stop();
    rmSync(`/tmp/ciba-redis-cluster-${BASE_PORT}`, { recursive: true, force: true });
  });

  test('when a command timed out and its node connection then closes, then the cluster client runs it again', async () => {
    // Its own key: the private cluster is kept between runs while healthy, and an aborted run leaves its count.
    const key = `${uniquePrefix('cluster-resend')}count`;
    const admin = cluster.admin();
    try {
      const owner = await cluster.primaryOf(await admin.cluster('KEYSLOT', key));
      expect(await store.get(key)).toBeNull(); // the store's connection to the owner is up

      const err: unknown = await store.eval(INCR_THEN_WAIT, 1, key, 400).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isStoreUnavailableError(err)).toBe(true); // the caller hears "timed out": a 503, a back-off

      // The connection breaks before the reply (a network fault: its socket is destroyed here).
      const node = (store as unknown as Cluster).nodes('master').find((n) => n.options.port === owner);
      (node as unknown as { stream: Socket } | undefined)?.stream.destroy();
      await waitFor(async () => (await admin.get(key)) === '2', 10_000, 'the command sent again');
      expect(await admin.get(key)).toBe('2'); // it ran twice, once after the caller gave up on it
    } finally {
      admin.disconnect();
    }
  }, 30_000);
});
