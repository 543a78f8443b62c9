import { jest } from '@jest/globals';
import { createSealer } from '../../src/crypto/sealing.js';
import { createIdempotencyStore } from '../../src/store/idempotency-store.js';
import { createKeys } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/redis.js';

const HOLD_SECONDS = 60;
const RESEND_WINDOW_MS = 2600;

/**
 * A claim whose caller heard a fault is freed in the background only while the client may still send
 * it, not for the whole hold (the scripts themselves are tested on real Redis: idempotency-claims).
 */
describe('Idempotency-Key claim whose caller heard a fault', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  test('when its claim never lands, then freeing it is tried only within the resend window, not for the hold', async () => {
    const tries: number[] = [];
    const redis = {
      idempotencyClaim: () => Promise.reject(new Error('Connection is closed.')),
      idempotencyRelease: () => {
        tries.push(Date.now());
        return Promise.resolve(0);
      },
    } as unknown as RedisClient;
    const store = createIdempotencyStore({
      redis,
      keys: createKeys('t:'),
      inFlightSeconds: HOLD_SECONDS,
      sealer: createSealer([Buffer.alloc(32, 1)]),
      clock: { now: () => Date.now() },
      resendWindowMs: RESEND_WINDOW_MS,
    });
    const start = Date.now();
    await expect(store.claim({ scope: 'ip:1', key: 'k', owner: 'a' }, 'print')).rejects.toThrow('closed');

    await jest.advanceTimersByTimeAsync(2 * HOLD_SECONDS * 1000);
    expect(tries.length).toBeGreaterThan(1);
    // Before: tried again up to 5 s apart for the whole 60 s hold.
    expect(Math.max(...tries) - start).toBeLessThanOrEqual(RESEND_WINDOW_MS);
  });
});
