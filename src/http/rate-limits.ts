import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError } from '../errors.js';
import type { RedisClient } from '../store/redis.js';
import { sha256 } from '../payments/secrets.js';

/**
 * Per client IP on checkout, and per login_hint so nobody can flood a customer's phone with
 * approval requests (push bombing). 0 turns a limit off.
 */
export interface RateLimits {
  checkoutByIp(ip: string): Promise<void>;
  checkoutByLoginHint(loginHint: string): Promise<void>;
}

function limiter(redis: RedisClient, keyPrefix: string, perMinute: number) {
  if (perMinute === 0) return null;
  return new RateLimiterRedis({
    storeClient: redis,
    keyPrefix,
    points: perMinute,
    duration: 60,
    rejectIfRedisNotReady: true,
  });
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

export function createRateLimits(deps: {
  redis: RedisClient;
  prefix: string;
  checkoutPerMinute: number;
  loginHintPerMinute: number;
}): RateLimits {
  const byIp = limiter(deps.redis, `${deps.prefix}rl:ip`, deps.checkoutPerMinute);
  const byHint = limiter(deps.redis, `${deps.prefix}rl:hint`, deps.loginHintPerMinute);
  return {
    checkoutByIp: (ip) => consume(byIp, ip, 'Too many checkouts from this address; wait a little.'),
    // Hashed: login hints identify bank customers and do not belong in Redis keys in the clear.
    checkoutByLoginHint: (hint) =>
      consume(
        byHint,
        sha256(hint),
        'Too many payment requests for this bank customer; wait a little before trying again.',
      ),
  };
}
