import type { ShardKeys } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/redis.js';

/** Every due entry of a shard (its buckets, through the directory, and the legacy set): member → score. */
export async function dueEntries(redis: RedisClient, shard: ShardKeys): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const buckets = await redis.zrange(shard.dueDir, 0, -1);
  for (const key of [shard.legacyDue, ...buckets.map((b) => shard.dueBucket + b)]) {
    const flat = await redis.zrange(key, 0, -1, 'WITHSCORES');
    for (let i = 0; i + 1 < flat.length; i += 2) out.set(flat[i] ?? '', Number(flat[i + 1]));
  }
  return out;
}

/** The due members of a shard, earliest first. */
export async function dueMembers(redis: RedisClient, shard: ShardKeys): Promise<string[]> {
  return [...(await dueEntries(redis, shard))].sort((a, b) => a[1] - b[1]).map(([m]) => m);
}

/** True when some work of the shard is due at `now` (the directory holds each bucket's earliest). */
export async function anythingDue(redis: RedisClient, shard: ShardKeys, now: number): Promise<boolean> {
  return (await redis.zcount(shard.dueDir, '-inf', now)) + (await redis.zcount(shard.legacyDue, '-inf', now)) > 0;
}

/** Deletes a shard's due work: its buckets, directory and legacy set. */
export async function clearDue(redis: RedisClient, shard: ShardKeys): Promise<void> {
  const buckets = await redis.zrange(shard.dueDir, 0, -1);
  await redis.del(shard.dueDir, shard.legacyDue, ...buckets.map((b) => shard.dueBucket + b));
}
