import type { Logger } from '../logger.js';
import type { Keys } from '../store/keys.js';
import type { RedisClient } from '../store/redis.js';
import { createShardSubscriber, type ShardSubscriber } from '../store/shard-subscriber.js';
import type { LookPlanner, WorkerRegistry } from './shard-coverage.js';

/**
 * The wake-up channels a joined worker follows: those of the shards it covers (every shard while it
 * does not know the live workers). A wake-up marks its shard to be looked at and nudges the loop.
 */
export function createWakeFollower(deps: {
  redis: RedisClient;
  keys: Keys;
  planner: LookPlanner;
  workers: WorkerRegistry;
  /** The shards in use as last read (the scheduler's shard registry). */
  shardRegistry: { known(): number[] };
  /** How long joining waits for the first follow. */
  followTimeoutMs: number;
}) {
  const { planner } = deps;
  let subscriber: ShardSubscriber | null = null;
  let logger: Logger | null = null;
  let following: ReadonlySet<number> | null = null;
  /** Follows the covered shards of `shards` when they changed since the last call (cheap on every look). */
  function follow(shards: readonly number[]): void {
    const covered = planner.covered(shards);
    if (!subscriber || covered === following) return;
    following = covered;
    subscriber.follow(covered).catch((err: unknown) => {
      following = null; // tried again at the next look
      logger?.warn({ err }, 'could not follow the wake-up channels; looks find the work meanwhile');
    });
  }
  return {
    follow,
    async join(onWake: () => void, log: Logger) {
      logger = log;
      subscriber = createShardSubscriber({
        redis: deps.redis,
        channelOf: (shard) => deps.keys.shard(shard).wake,
        onMessage: (shard) => {
          planner.touch(shard);
          onWake();
        },
        logger: log,
      });
      await deps.workers.join(() => {
        follow(deps.shardRegistry.known());
        onWake(); // coverage moved: look at the new shards now
      }, log);
      // Awaited once, so a ping right after start-up wakes this worker; but bounded: a subscriber copy
      // has no command timeout, and a node that takes connections but never answers would keep the
      // worker registered yet never claiming. Nothing depends on wake-ups (looks find the work), so
      // past the bound it goes on, and the next look follows again.
      following = planner.covered(deps.shardRegistry.known());
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => { resolve('late'); }, deps.followTimeoutMs);
      });
      // A failure before the bound fails the join as before; one after it is left to the next look.
      const followed = subscriber.follow(following).then(() => 'followed' as const);
      const outcome = await Promise.race([followed, late]).finally(() => { clearTimeout(timer); });
      if (outcome === 'followed') return;
      following = null; // tried again at the next look
      log.warn('following the wake-up channels is slow at start-up; the worker goes on without them meanwhile');
    },
    async leave() {
      await deps.workers.leave();
      subscriber?.close();
      subscriber = null;
      following = null;
    },
  };
}
