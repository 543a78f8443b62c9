import type { Logger } from '../logger.js';
import { createShardedSubscriber, type RedisClient } from './redis.js';

/**
 * Sharded pub/sub (issue 12.5): one channel per scheduler shard, in the shard's hash slot, sent with
 * SPUBLISH. On a cluster only the primary owning the slot (and its replica) handles a message,
 * where a classic PUBLISH goes to every node; ioredis keeps one subscriber connection per primary
 * that owns a followed slot and subscribes again after a failover or a slot move. A message lost
 * meanwhile only says "look now" sooner than the next look would: nothing depends on it arriving.
 */
export interface ShardSubscriber {
  /** Follows exactly the channels of `shards` (subscribes the new ones, unsubscribes the others). */
  follow(shards: Iterable<number>): Promise<void>;
  /** Follows the channel of one more shard. */
  add(shard: number): Promise<void>;
  close(): void;
}

export function createShardSubscriber(deps: {
  redis: RedisClient;
  channelOf: (shard: number) => string;
  onMessage: (shard: number, message: string) => void;
  logger: Logger;
}): ShardSubscriber {
  const sub = createShardedSubscriber(deps.redis);
  const followed = new Map<string, number>(); // channel → shard
  sub.on('smessage', (channel: string, message: string) => {
    const shard = followed.get(channel);
    if (shard !== undefined) deps.onMessage(shard, message);
  });
  sub.on('error', (err: unknown) => {
    deps.logger.warn({ err }, 'sharded subscriber error; ioredis reconnects and subscribes again');
  });

  async function add(shard: number): Promise<void> {
    const channel = deps.channelOf(shard);
    if (followed.has(channel)) return;
    followed.set(channel, shard);
    try {
      await sub.ssubscribe(channel); // one channel a call: a call's channels must share a slot
    } catch (err) {
      followed.delete(channel); // tried again by the next follow/add
      throw err;
    }
  }

  return {
    add,
    async follow(shards) {
      const wanted = new Set(shards);
      const gone = [...followed].filter(([, shard]) => !wanted.has(shard));
      for (const [channel] of gone) followed.delete(channel);
      await Promise.all([
        ...[...wanted].map(add),
        ...gone.map(async ([channel]) => {
          await sub.sunsubscribe(channel);
        }),
      ]);
    },
    close() {
      followed.clear();
      sub.disconnect();
    },
  };
}
