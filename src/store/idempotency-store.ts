import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

export type IdempotencyClaim =
  | { state: 'new' }
  | { state: 'in_flight' }
  | { state: 'mismatch' }
  | { state: 'replay'; status: number; body: string; location: string | null };

/** Stored responses are replayed for 24 h (issue 5). */
const KEEP_SECONDS = 24 * 3600;
/** A request that crashed mid-way frees its key after this long. */
const IN_FLIGHT_SECONDS = 60;

export interface IdempotencyStore {
  claim(scope: string, key: string, fingerprint: string): Promise<IdempotencyClaim>;
  /** Stores the final response for replay. */
  complete(
    scope: string,
    key: string,
    response: { status: number; body: string; location: string | null },
  ): Promise<void>;
  /** Forgets the claim (the request failed in a way worth retrying, such as a 503). */
  release(scope: string, key: string): Promise<void>;
}

export function createIdempotencyStore(deps: { redis: RedisClient; keys: Keys }): IdempotencyStore {
  const { redis, keys } = deps;
  return {
    async claim(scope, key, fingerprint) {
      const r = (await redis.idempotencyClaim(
        keys.idempotency(scope, key),
        fingerprint,
        IN_FLIGHT_SECONDS,
        KEEP_SECONDS,
      )) as string[];
      const state = r[0];
      if (state === 'new' || state === 'in_flight' || state === 'mismatch') return { state };
      return { state: 'replay', status: Number(r[1]), body: r[2] ?? '', location: r[3] ? r[3] : null };
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
          response.body,
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
