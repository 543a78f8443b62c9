import type { IdempotencyStore, StoredResponse } from '../payments/idempotency.js';
import type { Sealer } from '../payments/ports.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

/** Stored responses are replayed for 24 h (issue 5). */
const KEEP_SECONDS = 24 * 3600;

/** Pause between two background tries of a write that ending a claim could not make. */
const RETRY_EVERY_MS = 500;

/**
 * Ending a claim (a stored answer, or the claim freed) is a write to the claim's own node; when that
 * node is down (a primary killed, its replica not yet promoted), the request answers 503 but the
 * claim, already replicated, would stay in flight for `inFlightSeconds` after the failover: every
 * retry 409 for a minute, the 202 of a payment that exists never replayed. So the write is tried
 * again in the background, every RETRY_EVERY_MS, until it lands; only for half the claim's hold, so
 * a late one never ends another request's claim taken after this one expired. Timers are unref'd: a
 * process that stops leaves the claim to expire, as before.
 */
function endInBackground(write: () => Promise<void>, untilMs: number): void {
  const again = (): void => {
    if (Date.now() >= untilMs) return;
    write().catch(() => {
      setTimeout(again, RETRY_EVERY_MS).unref();
    });
  };
  setTimeout(again, RETRY_EVERY_MS).unref();
}

/** Runs `write`; when it fails, `later` is tried in the background (endInBackground) and the error thrown. */
async function endClaim(inFlightSeconds: number, write: () => Promise<void>, later = write): Promise<void> {
  const untilMs = Date.now() + (inFlightSeconds * 1000) / 2;
  try {
    await write();
  } catch (err) {
    endInBackground(later, untilMs);
    throw err;
  }
}

/** The claim becomes the stored answer, kept for replay; a failed command of the transaction throws. */
async function storeAnswer(redis: RedisClient, key: string, sealedBody: string, response: StoredResponse) {
  const replies = await redis
    .multi()
    .hset(
      key,
      'state',
      'done',
      'status',
      String(response.status),
      'body',
      sealedBody,
      'location',
      response.location ?? '',
    )
    .expire(key, KEEP_SECONDS)
    .exec();
  const failed = replies?.find(([err]) => err !== null)?.[0];
  if (failed) throw failed;
}

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
      const sealed = deps.sealer.seal(response.body, k);
      const store = () => storeAnswer(redis, k, sealed, response);
      // Later, only onto the claim: one lost with its node would come back without its fingerprint
      // (a retry of the same body refused as a mismatch); without it the retry runs as new, as before.
      await endClaim(deps.inFlightSeconds, store, async () => {
        if ((await redis.exists(k)) === 1) await store();
      });
    },
    async release(scope, key) {
      await endClaim(deps.inFlightSeconds, async () => {
        await redis.del(keys.idempotency(scope, key));
      });
    },
  };
}
