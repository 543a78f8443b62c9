import type { Logger } from '../logger.js';
import type { Keys } from '../store/keys.js';
import type { RedisClient } from '../store/redis.js';

/**
 * Status changes of payments as they happen, for server-sent events: one Redis subscriber per
 * process on the changes channel (every transition publishes the payment id), fanned out to local
 * listeners by payment id. Pub/sub reaches every instance, so a change made by any worker or API
 * process is seen by every SSE stream. A message only says "look again"; the stream is the truth.
 */
export interface ChangeFeed {
  /** Calls `listener` on every change of the payment; returns the unsubscribe function. */
  listen(paymentId: string, listener: () => void): Promise<() => void>;
  listenerCount(): number;
  close(): Promise<void>;
}

export function createChangeFeed(deps: { redis: RedisClient; keys: Keys; logger: Logger }): ChangeFeed {
  const listeners = new Map<string, Set<() => void>>();
  let subscriber: RedisClient | null = null;
  let subscribing: Promise<void> | null = null;

  function notify(channel: string, paymentId: string): void {
    if (channel !== deps.keys.changesChannel) return;
    for (const listener of listeners.get(paymentId) ?? []) listener();
  }

  /** Subscribes on first use, so processes without SSE clients hold no extra connection. */
  function ensureSubscribed(): Promise<void> {
    subscribing ??= (async () => {
      const sub = deps.redis.duplicate() as RedisClient;
      sub.on('message', notify);
      sub.on('error', (err: unknown) => {
        deps.logger.warn({ err }, 'change feed subscriber error; ioredis reconnects and resubscribes');
      });
      await sub.subscribe(deps.keys.changesChannel);
      subscriber = sub;
    })();
    return subscribing;
  }

  return {
    async listen(paymentId, listener) {
      await ensureSubscribed();
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
    async close() {
      listeners.clear();
      await subscribing?.catch(() => undefined);
      subscriber?.disconnect();
      subscriber = null;
      subscribing = null;
    },
  };
}
