import { createRedis, createRedisCluster } from '../../src/store/redis.js';
import { assertStoreFitForPayments } from '../../src/store/startup-checks.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { testStoreTarget } from '../support/redis.js';

/**
 * Start-up checks (issue 12.3): a Redis that may evict keys, or a cluster that does not serve every
 * slot, is refused with one line before anything is stored.
 */
describe('start-up checks of the store', () => {
  // Runs in the jest project `cluster` (next to the test cluster), and checks single Redis servers too.
  expect(testStoreTarget().redisClusterNodes).not.toBeNull();

  const servers: PrivateRedis[] = [];
  afterAll(async () => {
    for (const s of servers) await s.destroy();
  });

  async function check(server: PrivateRedis | null, cluster = false): Promise<string> {
    // null: the test cluster of scripts/redis-cluster.sh, which serves every slot.
    const seeds = server ? [{ host: '127.0.0.1', port: server.port }] : (testStoreTarget().redisClusterNodes ?? []);
    const redis = cluster ? createRedisCluster(seeds) : createRedis(server?.url ?? '');
    try {
      await assertStoreFitForPayments(redis, cluster ? seeds : null);
      return 'ok';
    } catch (err) {
      return (err as Error).message;
    } finally {
      redis.disconnect();
    }
  }

  test('when Redis evicts keys, then start-up is refused with one line naming the policy', async () => {
    const lru = await startPrivateRedis(['--maxmemory-policy', 'allkeys-lru']);
    servers.push(lru);
    const line = await check(lru);
    expect(line).toMatch(/^Redis 127\.0\.0\.1:\d+ has maxmemory-policy allkeys-lru; a payment store needs noeviction/);
    expect(line).not.toContain('\n');
  });

  test('when CONFIG is disabled (managed Redis), then the policy is read from INFO memory', async () => {
    const managed = await startPrivateRedis(['--maxmemory-policy', 'volatile-lru', '--rename-command', 'CONFIG', '']);
    servers.push(managed);
    expect(await check(managed)).toMatch(/has maxmemory-policy volatile-lru;/);
    const fine = await startPrivateRedis(['--rename-command', 'CONFIG', '']);
    servers.push(fine);
    expect(await check(fine)).toBe('ok');
  });

  test('when a cluster does not serve every slot, then start-up is refused; a whole cluster is accepted', async () => {
    const node = await startPrivateRedis(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf']);
    servers.push(node);
    const admin = createRedis(node.url);
    try {
      await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '9999');
      expect(await check(node, true)).toMatch(/^Redis Cluster serves 10000 of 16384 slots \(cluster_state:fail\)/);
      expect(await check(null, true)).toBe('ok');
    } finally {
      admin.disconnect();
    }
  });
});
