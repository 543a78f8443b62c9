import { jest } from '@jest/globals';
import { createSealer } from '../../src/crypto/sealing.js';
import { createIdempotencyStore } from '../../src/store/idempotency-store.js';
import { createKeys } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/redis.js';

const HOLD_SECONDS = 60;
/** When the claim re-sent by the cluster client lands: after a failover's node timeout and election. */
const LANDS_AT_MS = 20_000;

/**
 * A claim whose caller heard a fault is freed in the background, also when it lands long after (the
 * cluster client re-sends a timed-out command once its node's connection closes), at a low rate and
 * no longer than the hold (the scripts themselves are tested on real Redis: idempotency-claims).
 */
/** A store whose claim always fails as a closed connection, each release answered by `release`. */
function storeWithRelease(release: () => Promise<number>) {
  const redis = {
    idempotencyClaim: () => Promise.reject(new Error('Connection is closed.')),
    idempotencyRelease: release,
  } as unknown as RedisClient;
  return createIdempotencyStore({
    redis,
    keys: createKeys('t:'),
    inFlightSeconds: HOLD_SECONDS,
    sealer: createSealer([Buffer.alloc(32, 1)]),
    clock: { now: () => Date.now() },
  });
}

describe('Idempotency-Key claim whose caller heard a fault', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  test('when its claim lands 20 s later, then it is freed soon after, by a dozen tries at most', async () => {
    const tries: number[] = [];
    let freedAt: number | null = null;
    const start = Date.now();
    const store = storeWithRelease(() => {
      tries.push(Date.now());
      // Nothing of this owner to free until its claim lands; then the first try frees it.
      if (Date.now() - start < LANDS_AT_MS || freedAt !== null) return Promise.resolve(0);
      freedAt = Date.now() - start;
      return Promise.resolve(1);
    });
    await expect(store.claim({ scope: 'ip:1', key: 'k', owner: 'a' }, 'print')).rejects.toThrow('closed');

    await jest.advanceTimersByTimeAsync(2 * HOLD_SECONDS * 1000);
    // Before: tried only for 2.6 s, so a claim landing later held the key for the whole hold.
    expect(freedAt).not.toBeNull();
    expect(freedAt).toBeLessThanOrEqual(LANDS_AT_MS + 10_000);
    expect(Math.max(...tries) - start).toBe(freedAt); // no try after it was freed
    expect(tries.length).toBeLessThanOrEqual(12);
  });

  test('when its claim never lands, then freeing it stops with the hold', async () => {
    const tries: number[] = [];
    const start = Date.now();
    const store = storeWithRelease(() => {
      tries.push(Date.now());
      return Promise.resolve(0);
    });
    await expect(store.claim({ scope: 'ip:1', key: 'k', owner: 'a' }, 'print')).rejects.toThrow('closed');

    await jest.advanceTimersByTimeAsync(3 * HOLD_SECONDS * 1000);
    expect(Math.max(...tries) - start).toBeLessThanOrEqual(HOLD_SECONDS * 1000);
    expect(tries.length).toBeLessThanOrEqual(16);
  });
});
