// Where a bench run keeps its data: the single Redis (REDIS_URL) or the local Redis Cluster
// (REDIS_CLUSTER_NODES). Both offer the same few things the bench needs: a store client for seeding,
// the service's environment, CPU and memory summed over the primaries (replicas' CPU apart), and
// removing a run's keys.
import { Redis } from 'ioredis';
import { createRedis, createRedisCluster } from '../dist/store/redis.js';

/** user + sys CPU seconds of one node (INFO cpu). */
async function nodeCpu(node) {
  const info = await node.info('cpu');
  const get = (k) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return get('used_cpu_sys') + get('used_cpu_user');
}
/** EVALSHA calls and the µs Redis spent in them (INFO commandstats): the Lua scripts (claim, settle, renew…). */
async function nodeScripts(node) {
  const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(await node.info('commandstats'));
  return { calls: Number(m?.[1] ?? 0), usec: Number(m?.[2] ?? 0) };
}
async function sumScripts(nodes) {
  const all = await Promise.all(nodes.map(nodeScripts));
  return { calls: all.reduce((a, b) => a + b.calls, 0), usec: all.reduce((a, b) => a + b.usec, 0) };
}
async function nodeUsedMemory(node) {
  return Number(/used_memory:(\d+)/.exec(await node.info('memory'))?.[1] ?? 0);
}
const sum = async (nodes, f) => (await Promise.all(nodes.map(f))).reduce((a, b) => a + b, 0);

/** Every key under `prefix` on one node: SCAN there, UNLINK one key per command (cluster: no cross-slot). */
async function deleteOnNode(node, prefix, oneByOne) {
  let cursor = '0';
  do {
    const [next, found] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5000);
    cursor = next;
    if (found.length === 0) continue;
    if (!oneByOne) await node.unlink(...found);
    else {
      const pipeline = node.pipeline();
      for (const key of found) pipeline.unlink(key);
      await pipeline.exec();
    }
  } while (cursor !== '0');
}

export function singleTarget(url) {
  const node = new Redis(url);
  return {
    name: 'single',
    primaries: 1,
    shards: 1,
    env: { REDIS_URL: url },
    client: () => createRedis(url, { enableAutoPipelining: true }),
    cpu: async () => ({ primaries: await nodeCpu(node), replicas: 0, scripts: await nodeScripts(node) }),
    usedMemory: () => nodeUsedMemory(node),
    deleteKeys: (prefix) => deleteOnNode(node, prefix, false),
    version: async () => /redis_version:(\S+)/.exec(await node.info('server'))?.[1] ?? 'unknown',
    close: () => node.disconnect(),
  };
}

/** `host:port,…` → the cluster's nodes from CLUSTER NODES of the first seed that answers; null when none does. */
export async function clusterTarget(seedList, shards) {
  const seeds = seedList.split(',').map((s) => {
    const [host, port] = s.split(':');
    return { host, port: Number(port) };
  });
  let layout = null;
  for (const seed of seeds) {
    const probe = new Redis({ ...seed, lazyConnect: true, connectTimeout: 1000, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      const info = await probe.cluster('INFO');
      if (/cluster_state:ok/.test(info)) layout = await probe.cluster('NODES');
    } catch {
      // next seed
    } finally {
      probe.disconnect();
    }
    if (layout) break;
  }
  if (!layout) return null;
  const nodes = layout
    .trim()
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => !f[2].includes('fail'))
    .map((f) => {
      const [host, port] = f[1].split('@')[0].split(':');
      return { role: f[2].includes('master') ? 'primary' : 'replica', redis: new Redis({ host, port: Number(port) }) };
    });
  const primaries = nodes.filter((n) => n.role === 'primary').map((n) => n.redis);
  const replicas = nodes.filter((n) => n.role === 'replica').map((n) => n.redis);
  return {
    name: 'cluster',
    primaries: primaries.length,
    replicas: replicas.length,
    shards,
    env: { REDIS_CLUSTER_NODES: seedList, SCHEDULER_SHARDS: String(shards) },
    client: () => createRedisCluster(seeds, { enableAutoPipelining: true }),
    cpu: async () => ({
      primaries: await sum(primaries, nodeCpu),
      replicas: await sum(replicas, nodeCpu),
      scripts: await sumScripts(primaries),
    }),
    usedMemory: () => sum(primaries, nodeUsedMemory),
    deleteKeys: async (prefix) => {
      await Promise.all(primaries.map((node) => deleteOnNode(node, prefix, true)));
    },
    version: async () => /redis_version:(\S+)/.exec(await primaries[0].info('server'))?.[1] ?? 'unknown',
    close: () => nodes.forEach((n) => n.redis.disconnect()),
  };
}
