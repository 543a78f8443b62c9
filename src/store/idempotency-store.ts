import type { IdempotencyStore } from '../payments/idempotency.js';
import type { Sealer } from '../payments/ports.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

/** Stored responses are replayed for 24 h (issue 5). */
const KEEP_SECONDS = 24 * 3600;

/**
 * `inFlightSeconds`: how long a claim holds before a crashed request's key can be taken again; it must
 * outlast the longest checkout (the bank call with all its timeouts), or a retry would run beside it.
 * Stored bodies are sealed with the token keys: a 202 body holds the payment's client secret.
 */
export function createIdempotencyStore(deps: {
  redis: RedisClient;
  keys: Keys;
  inFlightSeconds: number;
  sealer: Sealer;
}): IdempotencyStore {
  const { redis, keys } = deps;
  return {
    async claim(scope, key, fingerprint) {
      const reply = await redis.idempotencyClaim(
        keys.idempotency(scope, key),
        fingerprint,
        deps.inFlightSeconds,
        KEEP_SECONDS,
      );
      if (reply[0] !== 'replay') return { state: reply[0] };
      const [, status, sealedBody, location] = reply;
      return {
        state: 'replay',
        response: {
          status: Number(status),
          body: deps.sealer.open(sealedBody ?? '', keys.idempotency(scope, key)),
          location: location ? location : null,
        },
      };
    },
    async complete(scope, key, response) {
      const k = keys.idempotency(scope, key);
      await redis
        .multi()
        .hset(
          k,
          'state',
          'done',
          'status',
          String(response.status),
          'body',
          deps.sealer.seal(response.body, k),
          'location',
          response.location ?? '',
        )
        .expire(k, KEEP_SECONDS)
        .exec();
    },
    async release(scope, key) {
      await redis.del(keys.idempotency(scope, key));
    },
  };
}
