import { Cluster, Redis } from 'ioredis';
import { createStoreClient, type RedisClient, type StoreTarget } from '../../src/store/redis.js';

/**
 * The Redis the service's tests run against (issue 12.2): the single Redis on 6379, or, in the jest
 * project `cluster` (TEST_REDIS_MODE=cluster), the local 6-node cluster of scripts/redis-cluster.sh
 * (TEST_REDIS_CLUSTER_NODES, default 127.0.0.1:7101–7106). The sandbox bank always uses 6379.
 */
export const SINGLE_URL = 'redis://127.0.0.1:6379';

export function testRedisMode(): 'single' | 'cluster' {
  return process.env.TEST_REDIS_MODE === 'cluster' ? 'cluster' : 'single';
}

export function testClusterNodes(): string {
  return (
    process.env.TEST_REDIS_CLUSTER_NODES ??
    Array.from({ length: 6 }, (_, i) => `127.0.0.1:${String(7101 + i)}`).join(',')
  );
}

/** The service's store variables for the current mode. */
export function testStoreEnv(): Record<string, string> {
  return testRedisMode() === 'cluster' ? { REDIS_CLUSTER_NODES: testClusterNodes() } : { REDIS_URL: SINGLE_URL };
}

export function testStoreTarget(): StoreTarget {
  const nodes = testRedisMode() === 'cluster' ? testClusterNodes() : null;
  return {
    redisUrl: SINGLE_URL,
    redisClusterNodes:
      nodes?.split(',').map((n) => ({ host: n.split(':')[0] ?? '', port: Number(n.split(':')[1]) })) ?? null,
  };
}

/** A store client (scripts defined) for the current mode. */
export function createTestStoreClient(): RedisClient {
  return createStoreClient(testStoreTarget());
}

/**
 * Every key matching `match`, sorted. A Cluster client's SCAN reaches one node only, so on a cluster
 * each primary is scanned (a test that looked at one node would pass without seeing the keys).
 */
export async function scanKeys(redis: Redis | Cluster, match: string): Promise<string[]> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  const found: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
  }
  return found.sort();
}

async function deleteOn(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    // One by one: on a cluster node the keys of one SCAN page live in different slots.
    await Promise.all(keys.map((k) => redis.unlink(k)));
  } while (cursor !== '0');
}

/** Removes a test run's keys (SCAN, never KEYS), from 6379 and, in cluster mode, from every primary. */
export async function deleteKeysWithPrefix(prefix: string, url = SINGLE_URL): Promise<void> {
  const redis = new Redis(url);
  try {
    await deleteOn(redis, prefix);
  } finally {
    redis.disconnect();
  }
  if (testRedisMode() !== 'cluster') return;
  const cluster = new Cluster(testStoreTarget().redisClusterNodes ?? []);
  try {
    await new Promise<void>((resolve) => cluster.once('ready', resolve));
    await Promise.all(cluster.nodes('master').map((node) => deleteOn(node, prefix)));
  } finally {
    cluster.disconnect();
  }
}
