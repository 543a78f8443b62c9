import type { Logger } from '../logger.js';
import type { Keys } from '../store/keys.js';
import type { RedisClient } from '../store/redis.js';
import { createShardSubscriber, type ShardSubscriber } from '../store/shard-subscriber.js';

/**
 * Status changes of payments as they happen, for server-sent events. Every transition publishes the
 * payment id on its shard's changes channel (sharded pub/sub, issue 12.5: on a cluster only the
 * shard's own nodes carry it); each process follows the channels of the shards its streams' payments
 * live in, fanned out to local listeners by payment id. A message only says "look again"; the stream
 * is the truth, and it also looks again at every heartbeat, so a message lost in a failover only
 * delays an event.
 */
export interface ChangeFeed {
  /** Calls `listener` on every change of the payment; returns the unsubscribe function. */
  listen(paymentId: string, listener: () => void): Promise<() => void>;
  listenerCount(): number;
  close(): Promise<void>;
}

export function createChangeFeed(deps: { redis: RedisClient; keys: Keys; logger: Logger }): ChangeFeed {
  const listeners = new Map<string, Set<() => void>>();
  // Made on first use, so processes without SSE clients hold no extra connection.
  let subscriber: ShardSubscriber | null = null;

  function notify(_shard: number, paymentId: string): void {
    for (const listener of listeners.get(paymentId) ?? []) listener();
  }

  return {
    async listen(paymentId, listener) {
      subscriber ??= createShardSubscriber({
        redis: deps.redis,
        channelOf: (shard) => deps.keys.shard(shard).changes,
        onMessage: notify,
        logger: deps.logger,
      });
      await subscriber.add(deps.keys.shardOf(paymentId));
      let set = listeners.get(paymentId);
      if (!set) listeners.set(paymentId, (set = new Set()));
      set.add(listener);
      return () => {
        const current = listeners.get(paymentId);
        current?.delete(listener);
        if (current?.size === 0) listeners.delete(paymentId);
      };
    },
    listenerCount() {
      let n = 0;
      for (const set of listeners.values()) n += set.size;
      return n;
    },
    close() {
      listeners.clear();
      subscriber?.close();
      subscriber = null;
      return Promise.resolve();
    },
  };
}
