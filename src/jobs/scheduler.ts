import type { Clock } from '../clock.js';
import { DUE_BUCKETS, type Keys, type ShardKeys } from '../store/keys.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, parseClaimReply, type RedisClient } from '../store/redis.js';
import type { Logger } from '../logger.js';
import { createSettleBatcher } from './settle-batcher.js';
import { createWakeFollower } from './wake-follower.js';
import { createLookPlanner, createWorkerRegistry, type LookPlanner, type RegistryTiming } from './shard-coverage.js';

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
  /**
   * It came back from an expired lease: the worker that held it may still be running its step (a
   * stall, a store it could not reach) and may have spent what is spent once (a CIBA auth_req_id).
   */
  takenOver?: true;
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
 * nothing. A worker that joined the live-worker registry claims from the shards it covers and sweeps
 * the others slowly (issue 12.5, see shard-coverage.ts).
 */
/** Where a work item stands: waiting (due at `at`, ms), leased (in flight), or neither (settled or never scheduled). */
export type PendingWork = { state: 'due'; at: number } | { state: 'leased' } | { state: 'none' };

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
  /** Adds or moves work to `at`; false when it is leased (in flight): left alone, never due beside its lease. */
  schedule(member: string, at: number): Promise<boolean>;
  /**
   * Moves waiting work earlier (ping: poll now) and wakes the workers that cover its shard, in one
   * step; or, when it is leased (in flight), makes it due at once when its worker reschedules it;
   * false when it is neither waiting nor leased.
   */
  advance(member: string, at: number): Promise<boolean>;
  /** Tells the idle workers that cover the member's shard to look at it now. */
  wake(member: string): Promise<void>;
  /**
   * Enters the live-worker registry (renewed in the background) and listens for wake-ups of the
   * shards this worker covers, calling `onWake` on each. Until then, claims visit every shard.
   */
  joinWorkers(onWake: () => void, logger: Logger): Promise<void>;
  /** Leaves the registry (its shards pass to the other workers at their next renewal) and stops listening. */
  leaveWorkers(): Promise<void>;
  /** The shards in use this worker covers (all of them while it does not know the live workers). */
  covered(): number[];
  depth(): Promise<{ due: number; leased: number }>;
  /** Where each of these work items of ONE payment stands, in their order (one read: one shard, one hash slot). */
  pendingOf(members: readonly string[]): Promise<PendingWork[]>;
}

/** How often a worker re-reads the shards in use (another process may use more). */
const SHARDS_REFRESH_MS = 10_000;
/**
 * How long claim-4.lua keeps the note that work came back from an expired lease: work put back is
 * due again within its pace (seconds to minutes), so an older note is of work that never came back.
 */
const TAKEOVER_NOTE_KEPT_MS = 3_600_000;

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
    /** The shards as last read, without asking Redis. */
    known: (): number[] => inUse,
  };
}

/** One claim-4.lua call on one shard: its items (with prefetched fields) leased until `leaseUntil`. */
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
    k.takenOver,
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
    TAKEOVER_NOTE_KEPT_MS,
    ...ctx.prefetchFields,
  );
  const reply = parseClaimReply(raw);
  const items = reply.items.map(({ member, dueAt, fields, takenOver }): ClaimedItem => {
    const item: ClaimedItem = { member, dueAt, leaseUntil };
    if (fields) item.fields = fields;
    if (takenOver) item.takenOver = true;
    return item;
  });
  return { items, nextDueAt: reply.nextDueAt, more: items.length === limit };
}

/** One claim on one shard, with what it said noted for the next look's plan. */
type ClaimOne = (shard: number, limit: number) => Promise<ClaimResult>;

/**
 * Claims from the shards of this look in one tick (auto-pipelined per node), each asked for an
 * equal share; the share left over goes to the shards after `start` (rotating), so none is always last.
 */
async function claimAcross(claimOne: ClaimOne, shards: number[], start: number, limit: number): Promise<ClaimResult> {
  const base = Math.floor(limit / shards.length);
  const asks: Promise<ClaimResult>[] = [];
  let skipped = false;
  for (let i = 0; i < shards.length; i++) {
    const share = base + (i < limit % shards.length ? 1 : 0);
    if (share === 0) skipped = true;
    else asks.push(claimOne(shards[(start + i) % shards.length] ?? 0, share));
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

/** What a claim needs across looks: the shards in use, the plan of which to visit, the wake-ups followed. */
interface Looks {
  ctx: ClaimContext;
  clock: Clock;
  leaseMs: number;
  shardRegistry: ReturnType<typeof createShardRegistry>;
  planner: LookPlanner;
  wakes: { follow(shards: readonly number[]): void };
  rotation: number;
}

/** One look: claims from the shards the planner picks (covered ones with work due, woken ones, a few swept). */
async function claim(looks: Looks, limit: number): Promise<ClaimResult> {
  const { ctx, planner } = looks;
  const now = looks.clock.now();
  const leaseUntil = now + looks.leaseMs;
  const shards = await looks.shardRegistry.inUse();
  looks.wakes.follow(shards);
  const visit = planner.plan(shards, now);
  const claimOne: ClaimOne = async (shard, share) => {
    const result = await claimFrom(ctx, shard, now, leaseUntil, share);
    planner.visited(shard, now, result.nextDueAt, result.more);
    return result;
  };
  const result =
    visit.length === 0
      ? { items: [], nextDueAt: null, more: false }
      : visit.length === 1
        ? await claimOne(visit[0] ?? 0, limit)
        : await claimAcross(claimOne, visit, looks.rotation++ % visit.length, limit);
  // The skipped shards' next due times bound the loop's sleep too (revisits: the loop's idle looks).
  const later = planner.nextLookAt(shards);
  if (later !== null && (result.nextDueAt === null || later < result.nextDueAt)) result.nextDueAt = later;
  return result;
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

/**
 * schedule-4.lua: `member` into its due bucket at `at` (out of the legacy set), its lease dropped too
 * with `dropLease`; without, false when it is leased (left alone).
 */
async function putDue(redis: RedisClient, keys: Keys, member: string, at: number, dropLease: '0' | '1') {
  const k = keys.scheduleOf(member);
  const { key, bucket } = keys.dueOf(member);
  return (await redis.schedule(key, k.dueDir, k.leases, k.legacyDue, at, member, bucket, dropLease)) === 1;
}

/** advance-5.lua: waiting work moved earlier (in its bucket or the legacy set) and its shard woken, or leased work marked. */
async function advanceDue(redis: RedisClient, keys: Keys, member: string, at: number): Promise<boolean> {
  const k = keys.scheduleOf(member);
  const { key, bucket } = keys.dueOf(member);
  return (await redis.advance(key, k.dueDir, k.leases, k.pinged, k.legacyDue, at, member, bucket, k.wake)) > 0;
}

async function pendingOf(redis: RedisClient, keys: Keys, members: readonly string[]): Promise<PendingWork[]> {
  if (members.length === 0) return [];
  // Waiting: in the payment's due bucket, or still in the due set of an earlier version.
  const shard = keys.scheduleOf(members[0] ?? '');
  const bucket = keys.dueOf(members[0] ?? '').key;
  const pipeline = redis.pipeline();
  for (const member of members)
    pipeline.zscore(bucket, member).zscore(shard.legacyDue, member).zscore(shard.leases, member);
  const scores = ((await pipeline.exec()) ?? []).map(([, v]) => (v === null ? null : Number(v)));
  return members.map((_, i): PendingWork => {
    const due = scores[3 * i] ?? scores[3 * i + 1] ?? null;
    if (due !== null) return { state: 'due', at: due };
    return scores[3 * i + 2] != null ? { state: 'leased' } : { state: 'none' };
  });
}

export interface SchedulerDeps {
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
  /** Live-worker registry timing (tests shorten it); default REGISTRY_TIMING. */
  registry?: RegistryTiming;
  /** How long joining waits for the wake-up channels (REDIS_COMMAND_TIMEOUT_MS); default the store's. */
  followTimeoutMs?: number;
}

function claimContext(deps: SchedulerDeps): ClaimContext {
  return {
    redis: deps.redis,
    keys: deps.keys,
    prefetchKind: deps.prefetch ? `${deps.prefetch.kind}:` : '',
    prefetchFields: deps.prefetch?.fields ?? [],
    leaseMs: deps.leaseMs,
    paceField: deps.prefetch?.pace?.field ?? '',
    paceDefaultMs: deps.prefetch?.pace?.defaultMs ?? 0,
  };
}

export function createScheduler(deps: SchedulerDeps): Scheduler {
  const { redis, keys, clock, leaseMs } = deps;
  const ctx = claimContext(deps);
  const settle = createSettleBatcher(deps);
  const shardRegistry = createShardRegistry(redis, keys, deps.shards ?? 1);
  const of = (member: string): ShardKeys => keys.scheduleOf(member);
  const workers = createWorkerRegistry({ redis, keys, clock, ...(deps.registry ? { timing: deps.registry } : {}) });
  const planner = createLookPlanner(workers);
  const wakes = createWakeFollower({
    redis,
    keys,
    planner,
    workers,
    shardRegistry,
    followTimeoutMs: deps.followTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
  });
  // Work settled or moved by this worker often leaves follow-up work in its shard: look there next.
  const touched = (member: string): void => {
    planner.touch(keys.shardOf(member));
  };
  const looks: Looks = { ctx, clock, leaseMs, shardRegistry, planner, wakes, rotation: 0 };
  return {
    registerShards: () => shardRegistry.register(),
    claim: (limit) => claim(looks, limit),
    async complete(member, leaseUntil) {
      touched(member);
      if (leaseUntil !== undefined) return settle(member, leaseUntil, '');
      await redis.multi().zrem(of(member).leases, member).srem(of(member).pinged, member).exec();
    },
    async reschedule(member, at, leaseUntil) {
      touched(member);
      if (leaseUntil !== undefined) return settle(member, leaseUntil, at);
      await putDue(redis, keys, member, at, '1');
    },
    renew: (items) => renewLeases(redis, keys, items, clock.now() + leaseMs),
    async schedule(member, at) {
      touched(member);
      return putDue(redis, keys, member, at, '0');
    },
    async advance(member, at) {
      // Waiting work only ever moves earlier; leased work is never copied, but marked so that it is
      // due at once when its worker settles it (a ping during an in-flight poll is not lost).
      touched(member);
      return advanceDue(redis, keys, member, at);
    },
    async wake(member) {
      await redis.spublish(of(member).wake, '1');
    },
    joinWorkers: (onWake, logger) => wakes.join(onWake, logger),
    leaveWorkers: () => wakes.leave(),
    covered: () => [...planner.covered(shardRegistry.known())],
    depth: async () => depthOf(redis, keys, await shardRegistry.inUse()),
    pendingOf: (members) => pendingOf(redis, keys, members),
  };
}
