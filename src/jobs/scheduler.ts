import type { Clock } from '../clock.js';
import type { Keys } from '../store/keys.js';
import type { RedisClient } from '../store/redis.js';

export interface ClaimedItem {
  member: string;
  /** When it was due (ms); now − dueAt is the lateness. */
  dueAt: number;
  /**
   * When this worker's lease ends (ms): the fencing token for complete/reschedule. `renew` moves it
   * forward while the work is in hand.
   */
  leaseUntil?: number;
}

/**
 * The durable scheduler of DESIGN.md: due work in a sorted set scored by due time, claimed by a Lua
 * script into a lease set. Redis is the source of truth; in-process timers only decide when to look.
 * A worker that dies leaves leases that expire and are claimed again by any other worker.
 */
export interface Scheduler {
  claim(limit: number): Promise<{ items: ClaimedItem[]; nextDueAt: number | null }>;
  /**
   * Work finished: drop the lease. With `leaseUntil` (from claim) only while the lease is still
   * this worker's: one that ran past its lease must not drop the lease of the worker that took over.
   */
  complete(member: string, leaseUntil?: number): Promise<void>;
  /** Work to be done again at `at`: lease dropped and due entry written atomically (same fencing as complete). */
  reschedule(member: string, at: number, leaseUntil?: number): Promise<void>;
  /**
   * Extends the leases of work in hand (issue 11.5), in one script call: each item still leased with
   * its `leaseUntil` gets a fresh lease and its `leaseUntil` updated; returns the items whose lease was
   * no longer this worker's (expired and taken over, or settled), which are left alone.
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

export function createScheduler(deps: { redis: RedisClient; keys: Keys; clock: Clock; leaseMs: number }): Scheduler {
  const { redis, keys, clock, leaseMs } = deps;
  return {
    async claim(limit) {
      const now = clock.now();
      const leaseUntil = now + leaseMs;
      const raw = await redis.claim(keys.due, keys.leases, now, leaseUntil, limit);
      const items: ClaimedItem[] = [];
      for (let i = 0; i + 1 < raw.length; i += 2)
        items.push({ member: raw[i] as string, dueAt: Number(raw[i + 1]), leaseUntil });
      const next = raw[raw.length - 1];
      return { items, nextDueAt: next ? Number(next) : null };
    },
    async complete(member, leaseUntil) {
      if (leaseUntil === undefined) await redis.multi().zrem(keys.leases, member).srem(keys.pinged, member).exec();
      else await redis.settle(keys.due, keys.leases, keys.pinged, member, leaseUntil, '', clock.now());
    },
    async reschedule(member, at, leaseUntil) {
      if (leaseUntil === undefined) await redis.multi().zrem(keys.leases, member).zadd(keys.due, at, member).exec();
      else await redis.settle(keys.due, keys.leases, keys.pinged, member, leaseUntil, at, clock.now());
    },
    async renew(items) {
      const held = items.filter((item) => item.leaseUntil !== undefined);
      if (held.length === 0) return [];
      const leaseUntil = clock.now() + leaseMs;
      const pairs = held.flatMap((item) => [item.member, item.leaseUntil as number]);
      const renewed = await redis.renew(keys.leases, leaseUntil, ...pairs);
      const lost: ClaimedItem[] = [];
      held.forEach((item, i) => {
        if (renewed[i] === 1) item.leaseUntil = leaseUntil;
        else lost.push(item);
      });
      return lost;
    },
    async schedule(member, at) {
      await redis.zadd(keys.due, at, member);
    },
    async advance(member, at) {
      // Waiting work only ever moves earlier; leased work is never copied, but marked so that it is
      // due at once when its worker settles it (a ping during an in-flight poll is not lost).
      return (await redis.advance(keys.due, keys.leases, keys.pinged, at, member)) > 0;
    },
    async wake() {
      await redis.publish(keys.wakeChannel, '1');
    },
    async depth() {
      const [due, leased] = await Promise.all([redis.zcard(keys.due), redis.zcard(keys.leases)]);
      return { due, leased };
    },
  };
}
