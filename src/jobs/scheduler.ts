import type { Clock } from '../clock.js';
import { DUE_BUCKETS, type Keys } from '../store/keys.js';
import type { RedisClient } from '../store/redis.js';
import { createSettleBatcher } from './settle-batcher.js';

export interface ClaimedItem {
  member: string;
  /** When it was due (ms); now − dueAt is the lateness. */
  dueAt: number;
  /**
   * When this worker's lease ends (ms): the fencing token for complete/reschedule. `renew` moves it
   * forward while the work is in hand.
   */
  leaseUntil?: number;
  /** Fields of its payment's hash read by the claim (work of the `prefetch` kind), in `prefetch.fields` order. */
  fields?: (string | null)[];
}

export interface ClaimResult {
  items: ClaimedItem[];
  /** When the earliest unclaimed item is due (ms), or null when nothing waits. */
  nextDueAt: number | null;
  /** A shard gave all it was asked for: more may be due now. */
  more: boolean;
}

/**
 * The durable scheduler of DESIGN.md: due work in sorted sets scored by due time, claimed by a Lua
 * script into lease sets. Redis is the source of truth; in-process timers only decide when to look.
 * A worker that dies leaves leases that expire and are claimed again by any other worker.
 *
 * The schedule is split into SCHEDULER_SHARDS shards (issue 12.1): on Redis Cluster each shard is one
 * hash slot, together with the payments born in it, so every script stays in one slot. A work item's
 * shard is read from its payment id, never from the current shard count; each process records the
 * shards it uses in `shardsInUse`, and workers claim from all of them, so lowering the count strands
 * nothing.
 */
export interface Scheduler {
  /** Records this process's shards as in use (before any payment is created in them). */
  registerShards(): Promise<void>;
  claim(limit: number): Promise<ClaimResult>;
  /**
   * Work finished: drop the lease. With `leaseUntil` (from claim) only while the lease is still
   * this worker's: one that ran past its lease must not drop the lease of the worker that took over.
   */
  complete(member: string, leaseUntil?: number): Promise<void>;
  /** Work to be done again at `at`: lease dropped and due entry written atomically (same fencing as complete). */
  reschedule(member: string, at: number, leaseUntil?: number): Promise<void>;
  /**
   * Extends the leases of work in hand (issue 11.5), one script call per shard: each item still leased
   * with its `leaseUntil` gets a fresh lease and its `leaseUntil` updated; returns the items whose lease
   * was no longer this worker's (expired and taken over, or settled), which are left alone.
   */
  renew(items: readonly ClaimedItem[]): Promise<ClaimedItem[]>;
  /** Adds or moves work (not leased) to `at`. */
  schedule(member: string, at: number): Promise<void>;
  /**
   * Moves waiting work earlier (ping: poll now), or, when it is leased (in flight), makes it due at
   * once when its worker reschedules it; false when it is neither waiting nor leased.
   */
  advance(member: string, at: number): Promise<boolean>;
  /** Tells idle workers to look now. */
  wake(): Promise<void>;
  depth(): Promise<{ due: number; leased: number }>;
}

/** How often a worker re-reads the shards in use (another process may use more). */
const SHARDS_REFRESH_MS = 10_000;

/** What every claim script call needs, built once per scheduler. */
interface ClaimContext {
  redis: RedisClient;
  keys: Keys;
  /** `poll:` when poll work is claimed with its payment's fields, else ''. */
  prefetchKind: string;
  prefetchFields: readonly string[];
  leaseMs: number;
  /** The prefetch kind's pace (hash field and default, ms), or '' / 0 when it has none. */
  paceField: string;
  paceDefaultMs: number;
}

/** The shards this process creates payments in, and the ones any process recorded (re-read every SHARDS_REFRESH_MS). */
function createShardRegistry(redis: RedisClient, keys: Keys, shards: number) {
  const own = Array.from({ length: shards }, (_, k) => k);
  let inUse = own;
  let refreshedAt = -Infinity;
  return {
    async register(): Promise<void> {
      await redis.sadd(keys.shardsInUse, ...own);
      refreshedAt = -Infinity;
    },
    async inUse(): Promise<number[]> {
      if (Date.now() - refreshedAt < SHARDS_REFRESH_MS) return inUse;
      refreshedAt = Date.now();
      const recorded = (await redis.smembers(keys.shardsInUse)).map(Number).filter(Number.isInteger);
      inUse = [...new Set([...own, ...recorded])].sort((a, b) => a - b);
      return inUse;
    },
  };
}

/** One claim-3.lua call on one shard: its items (with prefetched fields) leased until `leaseUntil`. */
async function claimFrom(
  ctx: ClaimContext,
  shard: number,
  now: number,
  leaseUntil: number,
  limit: number,
): Promise<ClaimResult> {
  const k = ctx.keys.shard(shard);
  const raw = await ctx.redis.claim(
    k.dueDir,
    k.leases,
    k.legacyDue,
    now,
    leaseUntil,
    limit,
    ctx.prefetchKind,
    k.payments,
    k.dueBucket,
    ctx.paceField === '' ? '' : ctx.prefetchKind,
    ctx.leaseMs,
    ctx.paceField,
    ctx.paceDefaultMs,
    DUE_BUCKETS,
    ...ctx.prefetchFields,
  );
  const items: ClaimedItem[] = [];
  for (let i = 0; i + 2 < raw.length; i += 3) {
    const fields = raw[i + 2];
    const item: ClaimedItem = { member: raw[i] as string, dueAt: Number(raw[i + 1]), leaseUntil };
    if (Array.isArray(fields)) item.fields = fields;
    items.push(item);
  }
  const next = raw[raw.length - 1];
  return { items, nextDueAt: next ? Number(next) : null, more: items.length === limit };
}

/**
 * Claims from every shard in one tick (auto-pipelined per node), each asked for an equal share; the
 * share left over goes to the shards after `start` (rotating), so none is always last.
 */
async function claimAcross(
  ctx: ClaimContext,
  shards: number[],
  start: number,
  now: number,
  leaseUntil: number,
  limit: number,
): Promise<ClaimResult> {
  const base = Math.floor(limit / shards.length);
  const asks: Promise<ClaimResult>[] = [];
  let skipped = false;
  for (let i = 0; i < shards.length; i++) {
    const share = base + (i < limit % shards.length ? 1 : 0);
    if (share === 0) skipped = true;
    else asks.push(claimFrom(ctx, shards[(start + i) % shards.length] ?? 0, now, leaseUntil, share));
  }
  // One shard down (a failover, a slot mid migration) must not stall the others: what the shards
  // that answered leased is worked on; only when none answered does the look fail.
  const settled = await Promise.allSettled(asks);
  const results = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failure = settled.find((r) => r.status === 'rejected');
  if (results.length === 0 && failure) throw failure.reason;
  const nexts = results.flatMap((r) => (r.nextDueAt === null ? [] : [r.nextDueAt]));
  return {
    items: results.flatMap((r) => r.items),
    nextDueAt: nexts.length > 0 ? Math.min(...nexts) : null,
    more: skipped || results.some((r) => r.more),
  };
}

/** renew-1.lua once per shard; returns the items whose lease was no longer this worker's. */
async function renewLeases(
  redis: RedisClient,
  keys: Keys,
  items: readonly ClaimedItem[],
  leaseUntil: number,
): Promise<ClaimedItem[]> {
  const byShard = new Map<number, ClaimedItem[]>();
  for (const item of items) {
    if (item.leaseUntil === undefined) continue;
    const shard = keys.shardOf(item.member);
    byShard.set(shard, [...(byShard.get(shard) ?? []), item]);
  }
  const lost = await Promise.all(
    [...byShard].map(async ([shard, held]) => {
      const pairs = held.flatMap((item) => [item.member, item.leaseUntil as number]);
      const renewed = await redis.renew(keys.shard(shard).leases, leaseUntil, ...pairs);
      return held.filter((item, i) => {
        if (renewed[i] !== 1) return true;
        item.leaseUntil = leaseUntil;
        return false;
      });
    }),
  );
  return lost.flat();
}

/** depth-3.lua once per shard (not one ZCARD per due bucket). */
async function depthOf(redis: RedisClient, keys: Keys, shards: number[]): Promise<{ due: number; leased: number }> {
  const counts = await Promise.all(
    shards.map((s) => {
      const k = keys.shard(s);
      return redis.depth(k.dueDir, k.leases, k.legacyDue, k.dueBucket);
    }),
  );
  return {
    due: counts.reduce((sum, [due]) => sum + due, 0),
    leased: counts.reduce((sum, [, leased]) => sum + leased, 0),
  };
}

export function createScheduler(deps: {
  redis: RedisClient;
  keys: Keys;
  clock: Clock;
  leaseMs: number;
  /** SCHEDULER_SHARDS: new payments are spread over shards 0…shards−1. */
  shards?: number;
  /**
   * Work of this kind (e.g. `poll`) is claimed with these fields of its payment's hash, in the same
   * script call (issue 12.4: a token poll needs no read of its own). With `pace` (the hash field of
   * the poll interval and its default), such work whose lease expired comes back no earlier than its
   * last lease start plus the interval (a worker that died mid-poll must not make the next one early).
   */
  prefetch?: { kind: string; fields: readonly string[]; pace?: { field: string; defaultMs: number } };
}): Scheduler {
  const { redis, keys, clock, leaseMs } = deps;
  const ctx: ClaimContext = {
    redis,
    keys,
    prefetchKind: deps.prefetch ? `${deps.prefetch.kind}:` : '',
    prefetchFields: deps.prefetch?.fields ?? [],
    leaseMs,
    paceField: deps.prefetch?.pace?.field ?? '',
    paceDefaultMs: deps.prefetch?.pace?.defaultMs ?? 0,
  };
  const settle = createSettleBatcher(deps);
  const shardRegistry = createShardRegistry(redis, keys, deps.shards ?? 1);
  let rotation = 0;
  /** schedule-4.lua: `member` due at `at`, its lease dropped too with `dropLease`. */
  const put = async (member: string, at: number, dropLease: '0' | '1') => {
    const k = keys.scheduleOf(member);
    const { key, bucket } = keys.dueOf(member);
    await redis.schedule(key, k.dueDir, k.leases, k.legacyDue, at, member, bucket, dropLease);
  };

  return {
    registerShards: () => shardRegistry.register(),
    async claim(limit) {
      const now = clock.now();
      const leaseUntil = now + leaseMs;
      const shards = await shardRegistry.inUse();
      if (shards.length === 1) return claimFrom(ctx, shards[0] ?? 0, now, leaseUntil, limit);
      return claimAcross(ctx, shards, rotation++ % shards.length, now, leaseUntil, limit);
    },
    async complete(member, leaseUntil) {
      if (leaseUntil !== undefined) return settle(member, leaseUntil, '');
      const k = keys.scheduleOf(member);
      await redis.multi().zrem(k.leases, member).srem(k.pinged, member).exec();
    },
    async reschedule(member, at, leaseUntil) {
      if (leaseUntil !== undefined) return settle(member, leaseUntil, at);
      await put(member, at, '1');
    },
    renew: (items) => renewLeases(redis, keys, items, clock.now() + leaseMs),
    schedule: (member, at) => put(member, at, '0'),
    async advance(member, at) {
      // Waiting work only ever moves earlier; leased work is never copied, but marked so that it is
      // due at once when its worker settles it (a ping during an in-flight poll is not lost).
      const k = keys.scheduleOf(member);
      const { key, bucket } = keys.dueOf(member);
      return (await redis.advance(key, k.dueDir, k.leases, k.pinged, k.legacyDue, at, member, bucket)) > 0;
    },
    async wake() {
      await redis.publish(keys.wakeChannel, '1');
    },
    depth: async () => depthOf(redis, keys, await shardRegistry.inUse()),
  };
}
