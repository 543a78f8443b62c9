import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

import type { NotificationStore } from '../payments/ports.js';

export type { NotificationStore } from '../payments/ports.js';

/**
 * CIBA ping mode: which payment a client_notification_token belongs to. Only the token's SHA-256 is
 * stored, so a Redis dump cannot be replayed against /ciba/notify; looking up a hash needs no
 * secret comparison at all.
 */
export function createNotificationStore(deps: { redis: RedisClient; keys: Keys }): NotificationStore {
  return {
    async remember(tokenHash, paymentId, ttlSeconds) {
      await deps.redis.set(deps.keys.notification(tokenHash), paymentId, 'EX', Math.max(1, ttlSeconds + 60));
    },
    find: (tokenHash) => deps.redis.get(deps.keys.notification(tokenHash)),
  };
}
