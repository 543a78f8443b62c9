import type { Clock } from '../clock.js';
import type { Keys } from '../store/keys.js';
import type { RedisClient } from '../store/redis.js';

/** Most items settled by one script call (bounds how long one call holds Redis). */
const MAX_BATCH = 256;
/**
 * How long a batch gathers before it is sent. Token answers arrive spread over the event loop's
 * turns (one or two per turn at 20k pending), so batching per turn still cost about one Redis write
 * (a syscall) per poll; 2 ms gathers tens. Only the lease is held that much longer: the next due
 * time was fixed when the answer came, so no poll is later for it.
 */
const GATHER_MS = 2;

interface Batch {
  args: (string | number)[];
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function newBatch(): Batch {
  let resolve: () => void = () => undefined;
  let reject: (err: unknown) => void = () => undefined;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { args: [], done, resolve, reject };
}

/**
 * Settles leased work in batches (issue 12.4): the items whose handlers finished within GATHER_MS
 * are settled by one settle-3.lua call per shard, instead of one call each. Every item is
 * still fenced by its own lease; callers of one batch share its promise (a Redis error fails them
 * all, and their leases expire and are retried, as with one call each).
 */
export function createSettleBatcher(deps: {
  redis: RedisClient;
  keys: Keys;
  clock: Clock;
}): (member: string, leaseUntil: number, at: number | '') => Promise<void> {
  const { redis, keys, clock } = deps;
  const open = new Map<number, Batch>();
  let planned = false;

  function send(shard: number, batch: Batch): void {
    const k = keys.shard(shard);
    redis.settle(k.dueDir, k.leases, k.pinged, clock.now(), k.dueBucket, ...batch.args).then(() => {
      batch.resolve();
    }, batch.reject);
  }

  /** Sends every open batch, GATHER_MS after the first item of this round was queued. */
  function flush(): void {
    planned = false;
    for (const [shard, batch] of open) send(shard, batch);
    open.clear();
  }

  return function settle(member, leaseUntil, at) {
    const shard = keys.shardOf(member);
    let batch = open.get(shard);
    if (!batch) {
      batch = newBatch();
      open.set(shard, batch);
    }
    batch.args.push(member, leaseUntil, at, at === '' ? '' : keys.dueOf(member).bucket);
    if (batch.args.length >= MAX_BATCH * 4) {
      open.delete(shard);
      send(shard, batch);
    } else if (!planned) {
      planned = true;
      setTimeout(flush, GATHER_MS);
    }
    return batch.done;
  };
}
