import { createLogger } from '../../src/logger.js';
import { createKeys } from '../../src/store/keys.js';
import { createRedisCluster, createStoreClient, type RedisClient } from '../../src/store/redis.js';
import { createShardSubscriber, type ShardSubscriber } from '../../src/store/shard-subscriber.js';
import { waitFor } from '../support/api.js';
import { startPrivateCluster, type PrivateCluster } from '../support/private-cluster.js';
import { uniquePrefix } from '../support/system.js';

const BASE_PORT = 7181; // 7111 failover, 7121 migration, 7161 cluster-ask-wait (resilience)
const SHARDS = 8;

/**
 * Sharded pub/sub (issue 12.5): wake-ups and status changes go to the channel of their shard only.
 * After the primary owning a followed channel's slot dies and its replica takes over, the
 * subscription is made again by itself (ioredis' sharded subscribers follow the slot map).
 */
describe('sharded pub/sub across a failover', () => {
  const keys = createKeys(uniquePrefix('spub'));
  let cluster: PrivateCluster;
  let publisher: RedisClient;
  let subscriberClient: RedisClient;
  let subscriber: ShardSubscriber;
  const received: { shard: number; message: string }[] = [];

  beforeAll(async () => {
    cluster = startPrivateCluster(BASE_PORT);
    const nodes = cluster.ports.map((port) => ({ host: '127.0.0.1', port }));
    publisher = createRedisCluster(nodes);
    // As the service builds it: the store's command timeout (short here) and fail-fast settings.
    subscriberClient = createStoreClient({ redisUrl: '', redisClusterNodes: nodes, redisCommandTimeoutMs: 300 });
    subscriber = createShardSubscriber({
      redis: subscriberClient,
      channelOf: (shard) => keys.shard(shard).wake,
      onMessage: (shard, message) => received.push({ shard, message }),
      logger: createLogger('silent'),
    });
    await subscriber.follow(Array.from({ length: SHARDS }, (_, k) => k));
    // A primary killed before its replica attached could not fail over.
    await waitFor(
      async () => {
        const ranges = (await publisher.cluster('SLOTS')) as unknown[][];
        return ranges.length === 3 && ranges.every((range) => range.length >= 4);
      },
      30_000,
      'a replica for every primary',
      200,
    );
  }, 60_000);

  afterAll(async () => {
    subscriber.close();
    publisher.disconnect();
    subscriberClient.disconnect();
    await cluster.heal();
    cluster.stop();
  }, 60_000);

  const got = (shard: number, message: string) => received.some((r) => r.shard === shard && r.message === message);

  test('a message on each shard reaches its follower, and only the followed shards are heard', async () => {
    for (let k = 0; k < SHARDS; k++) await publisher.spublish(keys.shard(k).wake, `hello-${String(k)}`);
    await publisher.spublish(keys.shard(SHARDS).wake, 'not-followed');
    await waitFor(() => received.length >= SHARDS, 10_000, 'one message per shard');
    for (let k = 0; k < SHARDS; k++) expect(got(k, `hello-${String(k)}`)).toBe(true);
    expect(received.some((r) => r.message === 'not-followed')).toBe(false);
  });

  test('when the primary of a followed slot is killed, then after the takeover messages arrive again', async () => {
    const slot = await publisher.cluster('KEYSLOT', keys.shard(0).wake);
    const primary = await cluster.primaryOf(slot);
    cluster.kill(primary);
    const killedAt = Date.now();
    let attempt = 0;
    await waitFor(
      async () => {
        attempt++;
        await publisher.spublish(keys.shard(0).wake, `after-${String(attempt)}`).catch(() => undefined);
        return received.some((r) => r.shard === 0 && r.message.startsWith('after-'));
      },
      45_000,
      'a message on shard 0 after the failover',
      250,
    );
    const tookMs = Date.now() - killedAt;
    expect(tookMs).toBeLessThan(45_000);
    // The other shards' subscriptions still work too.
    await publisher.spublish(keys.shard(1).wake, 'still-there');
    await waitFor(() => got(1, 'still-there'), 10_000, 'shard 1 after the failover');
    process.stdout.write(`sharded subscription back ${String(tookMs)} ms after the SIGKILL\n`);
  }, 60_000);

  test('when the node owning a followed slot restarts, then messages arrive again', async () => {
    const slot = await publisher.cluster('KEYSLOT', keys.shard(2).wake);
    const owner = await cluster.primaryOf(slot);
    cluster.kill(owner);
    await cluster.heal(); // restarted (as a replica when its replica took over meanwhile)
    const restartedAt = Date.now();
    let attempt = 0;
    await waitFor(
      async () => {
        attempt++;
        await publisher.spublish(keys.shard(2).wake, `restarted-${String(attempt)}`).catch(() => undefined);
        return received.some((r) => r.shard === 2 && r.message.startsWith('restarted-'));
      },
      30_000,
      'a message on shard 2 after its node restarted',
      250,
    );
    process.stdout.write(`sharded subscription back ${String(Date.now() - restartedAt)} ms after the restart\n`);
  }, 60_000);
});
