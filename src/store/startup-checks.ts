import { Redis, type Cluster } from 'ioredis';
import type { RedisClient } from './redis.js';

/** The store cannot keep payments safely; start-up stops with this one line (issue 12.3). */
export class StoreUnfitError extends Error {
  override readonly name = 'StoreUnfitError';
}

/**
 * Reads a node's eviction policy. `CONFIG` is often disabled on managed Redis; `INFO memory` reports
 * the same value as `maxmemory_policy`.
 */
async function evictionPolicy(node: Redis): Promise<string | null> {
  try {
    const [, policy] = (await node.config('GET', 'maxmemory-policy')) as string[];
    if (policy) return policy;
  } catch {
    // CONFIG disabled or renamed: fall through to INFO.
  }
  return /^maxmemory_policy:(\S+)/m.exec(await node.info('memory'))?.[1] ?? null;
}

/** CLUSTER INFO of the first seed node that answers (a plain connection: the cluster client waits for `ok`). */
async function clusterInfo(seeds: readonly { host: string; port: number }[]): Promise<string> {
  for (const seed of seeds) {
    const probe = new Redis({ ...seed, lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      return await probe.cluster('INFO');
    } catch {
      // the next seed
    } finally {
      probe.disconnect();
    }
  }
  throw new StoreUnfitError('Redis Cluster: none of REDIS_CLUSTER_NODES answered');
}

async function ready(cluster: Cluster, timeoutMs: number): Promise<void> {
  if (cluster.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new StoreUnfitError(`Redis Cluster: not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    cluster.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Refuses a store that would lose payments: one that evicts keys under memory pressure (anything but
 * `maxmemory-policy noeviction` may silently drop a payment, its schedule or an idempotency record),
 * or, on Redis Cluster, one that does not serve all 16384 slots (some payments would be unreachable).
 */
export async function assertStoreFitForPayments(
  redis: RedisClient,
  clusterSeeds: readonly { host: string; port: number }[] | null,
): Promise<void> {
  let nodes: Redis[] = [redis];
  if (clusterSeeds) {
    const info = await clusterInfo(clusterSeeds);
    const slotsOk = Number(/^cluster_slots_ok:(\d+)/m.exec(info)?.[1] ?? 0);
    const state = /^cluster_state:(\w+)/m.exec(info)?.[1] ?? 'unknown';
    if (state !== 'ok' || slotsOk !== 16384)
      throw new StoreUnfitError(
        `Redis Cluster serves ${slotsOk} of 16384 slots (cluster_state:${state}); every slot must be served`,
      );
    const cluster = redis as unknown as Cluster;
    await ready(cluster, 10_000);
    nodes = cluster.nodes('master');
  }
  for (const node of nodes) {
    const policy = await evictionPolicy(node);
    if (policy !== 'noeviction')
      throw new StoreUnfitError(
        `Redis ${node.options.host ?? ''}:${node.options.port ?? ''} has maxmemory-policy ${policy ?? 'unknown'}; a payment store needs noeviction (evicted keys are lost payments)`,
      );
  }
}
