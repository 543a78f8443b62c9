import { judgeKeyCheck, KeyCheckError, sealKeyCheck } from '../crypto/key-check.js';
import type { Logger } from '../logger.js';
import type { Keys } from './keys.js';
import { isStoreUnavailableError, type RedisClient } from './redis.js';

/**
 * At start-up: writes the deployment's key check value if there is none (SET NX: the first process
 * wins), then checks that our keys open it; re-seals it with our first key during a rotation
 * (new key first, old after). Waits for Redis while it is away: a process that cannot check its
 * keys must not take work. Throws KeyCheckError, whose message is the one line to print.
 */
export async function verifyDeploymentKeys(deps: {
  redis: RedisClient;
  keys: Keys;
  tokenKeys: readonly Buffer[];
  logger: Logger;
}): Promise<void> {
  const { redis, keys, tokenKeys, logger } = deps;
  for (let attempt = 1; ; attempt++) {
    try {
      await redis.set(keys.keyCheck, sealKeyCheck(tokenKeys), 'NX');
      const stored = (await redis.get(keys.keyCheck)) ?? '';
      switch (judgeKeyCheck(stored, tokenKeys)) {
        case 'current':
          return;
        case 'older_key':
          await redis.set(keys.keyCheck, sealKeyCheck(tokenKeys));
          logger.info('key check value re-sealed with the first TOKEN_ENCRYPTION_KEY (key rotation)');
          return;
        case 'mismatch':
          throw new KeyCheckError(
            `TOKEN_ENCRYPTION_KEY: none of the configured keys opens this deployment's key check value in Redis (${keys.keyCheck}); every process of a deployment must share the key`,
          );
      }
    } catch (err) {
      if (!isStoreUnavailableError(err)) throw err;
      if (attempt % 10 === 1)
        logger.warn({ attempt }, 'Redis unavailable at start-up; waiting to check the token keys');
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}
