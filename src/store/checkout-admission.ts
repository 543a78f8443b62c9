import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError } from '../errors.js';
import type { AdmissionTicket, CheckoutAdmission } from '../payments/checkout-admission.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

/**
 * Checkout admission on Redis (rate-limiter-flexible): per client address, and per customer so
 * nobody can flood a customer's phone with approval requests (push bombing). 0 turns a limit off.
 */
export interface AdmissionLimits {
  checkoutPerMinute: number;
  loginHintPerMinute: number;
}

function limiter(redis: RedisClient, keyPrefix: string, points: number, duration: number) {
  if (points === 0) return null;
  return new RateLimiterRedis({ storeClient: redis, keyPrefix, points, duration, rejectIfRedisNotReady: true });
}

async function consume(l: RateLimiterRedis | null, key: string, detail: string): Promise<void> {
  if (!l) return;
  try {
    await l.consume(key);
  } catch (err) {
    if (err instanceof RateLimiterRes) {
      throw new AppError('rate_limited', detail, {
        retryAfterSeconds: Math.max(1, Math.ceil(err.msBeforeNext / 1000)),
      });
    }
    throw err;
  }
}

export function createCheckoutAdmission(deps: {
  redis: RedisClient;
  keys: Keys;
  limits: AdmissionLimits;
}): CheckoutAdmission {
  const { redis, keys, limits } = deps;
  const byAddress = limiter(redis, keys.rateLimit('ip'), limits.checkoutPerMinute, 60);
  const byCustomer = limiter(redis, keys.rateLimit('hint'), limits.loginHintPerMinute, 60);
  const ticket: AdmissionTicket = { confirm: () => Promise.resolve(), release: () => Promise.resolve() };
  return {
    async admit({ clientAddress, customerKey }) {
      if (clientAddress !== null)
        await consume(byAddress, clientAddress, 'Too many checkouts from this address; wait a little.');
      await consume(
        byCustomer,
        customerKey,
        'Too many payment requests for this bank customer; wait a little before trying again.',
      );
      return ticket;
    },
  };
}
