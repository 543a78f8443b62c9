import { randomUUID } from 'node:crypto';
import { fnv1a32 } from '../crypto/hashing.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Keys } from '../store/keys.js';
import type { RedisClient } from '../store/redis.js';

/**
 * Which shards a worker's look visits (issue 12.5). Claiming from every shard on every look made
 * claim calls grow with workers × shards; instead each worker covers the shards that rendezvous
 * hashing over the live workers gives it, so every shard is covered by WORKERS_PER_SHARD workers
 * (all of them when fewer), and one worker joining or leaving moves only its own shards. Nothing
 * depends on coverage being right: any claim on a shard puts back the expired leases of a dead
 * worker, a worker that does not know the live workers claims from every shard, and the shards a
 * worker does not cover are swept slowly, so a shard orphaned by a registry glitch still drains.
 */
export const WORKERS_PER_SHARD = 2;

/** Live-worker registry timing (the clock's ms): entries of workers that stopped renewing drop out after `ttlMs`. */
export interface RegistryTiming {
  renewEveryMs: number;
  ttlMs: number;
}
export const REGISTRY_TIMING: RegistryTiming = { renewEveryMs: 3000, ttlMs: 10_000 };

/**
 * A covered shard whose next due time is ahead is still looked at this often: work put there
 * earlier by a process that sent no wake-up waits at most this long.
 */
const REVISIT_MS = 500;
/** Each shard this worker does not cover is swept this often, at most SWEEP_PER_LOOK of them per look. */
const SWEEP_MS = 5000;
const SWEEP_PER_LOOK = 16;

/** FNV-1a, then murmur3's finaliser: a well spread 32-bit weight. */
function hash32(text: string): number {
  return fmix(fnv1a32(text));
}
function fmix(x: number): number {
  let h = x ^ (x >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The shards `me` covers: those where its weight is among the `r` highest of `workers` (sorted ids;
 * ties go to the earlier id). Every worker computes the same answer from the same list. With more
 * workers than 2 per shard, each shard gets ⌈workers ÷ shards⌉ of them, so the fleet's coverage has a
 * place for every worker (one shard on one Redis: all of them claim from it, as before the coverage).
 */
export function coveredShards(
  shards: readonly number[],
  workers: readonly string[],
  me: string,
  r = WORKERS_PER_SHARD,
): number[] {
  const mine = workers.indexOf(me);
  r = Math.max(r, Math.ceil(workers.length / Math.max(1, shards.length)));
  if (mine < 0 || workers.length <= r) return [...shards];
  const weights = workers.map(hash32);
  const own = weights[mine] ?? 0;
  return shards.filter((shard) => {
    const hs = hash32(`s${String(shard)}`);
    const my = fmix(own ^ hs);
    let above = 0;
    for (let j = 0; j < weights.length && above < r; j++) {
      const w = fmix((weights[j] ?? 0) ^ hs);
      if (w > my || (w === my && j < mine)) above++;
    }
    return above < r;
  });
}

export interface WorkerRegistry {
  readonly id: string;
  /** The live workers (sorted ids, this one included), or null when unknown (not joined, or the last renewal failed). */
  live(): string[] | null;
  /** Enters the registry and renews the entry in the background; `logger` hears when renewals start and stop failing. */
  join(onChange: () => void, logger?: Logger): Promise<void>;
  leave(): Promise<void>;
}

/**
 * A store away fails every renewal (one each `renewEveryMs`, in every worker): the log says so when
 * they start failing and when they succeed again, not once a tick.
 */
function createRenewalHealth() {
  let failedSince: number | null = null;
  let failures = 0;
  return {
    logger: undefined as Logger | undefined,
    failed(err: unknown, now: number): void {
      if (failures++ === 0) {
        failedSince = now;
        this.logger?.warn({ err }, 'worker registry not renewed; claiming from every shard until it is');
      }
    },
    renewed(now: number): void {
      if (failures === 0) return;
      this.logger?.info({ failures, forMs: now - (failedSince ?? now) }, 'worker registry renewed again');
      failures = 0;
      failedSince = null;
    },
  };
}

/**
 * One sorted set of worker ids scored by when their entry expires, as the key-holder registry keeps
 * processes: each renewal drops the expired entries, writes its own and reads the rest, in one MULTI.
 */
export function createWorkerRegistry(deps: {
  redis: RedisClient;
  keys: Keys;
  clock: Clock;
  timing?: RegistryTiming;
}): WorkerRegistry {
  const { redis, clock } = deps;
  const key = deps.keys.workers;
  const timing = deps.timing ?? REGISTRY_TIMING;
  const id = randomUUID();
  let live: string[] | null = null;
  let timer: NodeJS.Timeout | null = null;
  const health = createRenewalHealth();

  async function renew(): Promise<boolean> {
    const before = live?.join(',');
    const now = clock.now();
    try {
      const replies = await redis
        .multi()
        .zremrangebyscore(key, '-inf', now)
        .zadd(key, now + timing.ttlMs, id)
        .pexpire(key, timing.ttlMs)
        .zrange(key, 0, -1)
        .exec();
      const members = replies?.[3]?.[1];
      live = Array.isArray(members) && members.includes(id) ? (members as string[]).sort() : null;
      health.renewed(now);
    } catch (err) {
      health.failed(err, now);
      live = null;
    }
    return live?.join(',') !== before;
  }

  return {
    id,
    live: () => live,
    async join(onChange, logger) {
      health.logger = logger;
      await renew();
      timer = setInterval(() => {
        void renew().then((changed) => {
          if (changed) onChange();
        });
      }, timing.renewEveryMs);
      timer.unref();
    },
    async leave() {
      if (timer) clearInterval(timer);
      timer = null;
      live = null;
      await redis.zrem(key, id).catch(() => undefined);
    },
  };
}

interface ShardView {
  /** When this worker last claimed from the shard (the clock's ms). */
  visitedAt: number;
  /** The shard's next due time as that claim returned it (null: nothing waited). */
  nextDue: number | null;
}

/** Decides, per look, which shards to claim from, and remembers what each claim said. */
export interface LookPlanner {
  /** The shards this worker covers among `shards` (all while the live workers are unknown). */
  covered(shards: readonly number[]): ReadonlySet<number>;
  /** The shards to claim from now: covered ones with work due or not seen lately, woken ones, and a few to sweep. */
  plan(shards: readonly number[], now: number): number[];
  /** A claim on `shard` at `now` answered. */
  visited(shard: number, now: number, nextDue: number | null, more: boolean): void;
  /** Look at `shard` at the next look, whatever it said before (a wake-up, work settled there). */
  touch(shard: number): void;
  /** The earliest next due time the covered shards last returned (null: none known), for the loop's sleep. */
  nextLookAt(shards: readonly number[]): number | null;
}

export function createLookPlanner(registry: Pick<WorkerRegistry, 'id' | 'live'>): LookPlanner {
  const views = new Map<number, ShardView>();
  const touched = new Set<number>();
  let cache = { key: '', covered: new Set<number>() as ReadonlySet<number> };
  let sweepFrom = 0;

  function covered(shards: readonly number[]): ReadonlySet<number> {
    const live = registry.live();
    const key = `${live?.join(',') ?? '*'}|${shards.join(',')}`;
    if (cache.key !== key) cache = { key, covered: new Set(live ? coveredShards(shards, live, registry.id) : shards) };
    return cache.covered;
  }

  function due(shard: number, now: number): boolean {
    const view = views.get(shard);
    if (!view || now - view.visitedAt >= REVISIT_MS) return true;
    return view.nextDue !== null && view.nextDue <= now;
  }

  function sweep(shards: readonly number[], mine: ReadonlySet<number>, now: number): number[] {
    const picked: number[] = [];
    for (let i = 0; i < shards.length && picked.length < SWEEP_PER_LOOK; i++) {
      const shard = shards[(sweepFrom + i) % shards.length] ?? 0;
      if (mine.has(shard) || touched.has(shard)) continue;
      if (now - (views.get(shard)?.visitedAt ?? -Infinity) >= SWEEP_MS) picked.push(shard);
    }
    sweepFrom = (sweepFrom + SWEEP_PER_LOOK) % Math.max(1, shards.length);
    return picked;
  }

  return {
    covered,
    plan(shards, now) {
      const mine = covered(shards);
      const visit = shards.filter((s) => touched.has(s) || (mine.has(s) && due(s, now)));
      // Cleared before the claim: a wake-up arriving while it runs is kept for the next look.
      touched.clear();
      if (mine.size < shards.length) visit.push(...sweep(shards, mine, now));
      return visit;
    },
    visited(shard, now, nextDue, more) {
      views.set(shard, { visitedAt: now, nextDue: more ? now : nextDue });
    },
    touch(shard) {
      touched.add(shard);
    },
    nextLookAt(shards) {
      let next: number | null = null;
      for (const shard of covered(shards)) {
        const at = views.get(shard)?.nextDue ?? null;
        if (at !== null && (next === null || at < next)) next = at;
      }
      return next;
    },
  };
}
