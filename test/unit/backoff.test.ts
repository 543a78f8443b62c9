import { backoffMs } from '../../src/payments/backoff.js';

/** Runs `run` with Math.random fixed, to reach the ends of the jitter range exactly. */
function withRandom<T>(value: number, run: () => T): T {
  const real = Math.random;
  Math.random = () => value;
  try {
    return run();
  } finally {
    Math.random = real;
  }
}

describe('backoffMs', () => {
  test.each([
    [0, 1000],
    [1, 2000],
    [3, 8000],
    [5, 32_000],
    [6, 60_000], // 64 s capped at maxMs
    [50, 60_000],
  ])('when attempt %i, then the delay lies in [ceiling/2, ceiling] with ceiling %i ms', (attempt, ceiling) => {
    expect(withRandom(0, () => backoffMs(attempt))).toBe(ceiling / 2);
    expect(withRandom(0.999999, () => backoffMs(attempt))).toBe(Math.round(ceiling / 2 + 0.999999 * (ceiling / 2)));
    for (let i = 0; i < 200; i++) {
      const delay = backoffMs(attempt);
      expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
      expect(delay).toBeLessThanOrEqual(ceiling);
      expect(Number.isInteger(delay)).toBe(true);
    }
  });

  test('when attempts repeat, then the delays are jittered (not all equal)', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffMs(4)));
    expect(delays.size).toBeGreaterThan(10);
  });

  test('when base and max are given, then they set the growth and the cap', () => {
    expect(withRandom(0, () => backoffMs(2, { baseMs: 100, maxMs: 10_000 }))).toBe(200);
    expect(withRandom(0.999999, () => backoffMs(20, { baseMs: 100, maxMs: 10_000 }))).toBe(10_000);
  });

  test('when the attempt is huge, then the delay is still finite and capped', () => {
    const delay = backoffMs(10_000, { baseMs: 1000, maxMs: Number.MAX_SAFE_INTEGER });
    expect(Number.isFinite(delay)).toBe(true);
    expect(delay).toBeLessThanOrEqual(1000 * 2 ** 20);
  });

  test('when Retry-After is longer than the backoff, then it is the floor', () => {
    expect(withRandom(0.999999, () => backoffMs(0, { retryAfterMs: 30_000 }))).toBe(30_000);
    expect(backoffMs(10, { retryAfterMs: 120_000 })).toBe(120_000);
  });

  test('when Retry-After is shorter than the backoff, then the backoff stands', () => {
    expect(withRandom(0, () => backoffMs(3, { retryAfterMs: 1000 }))).toBe(4000);
  });

  test('when Retry-After exceeds maxMs, then the server still wins (maxMs caps only our own backoff)', () => {
    expect(backoffMs(1, { maxMs: 5000, retryAfterMs: 90_000 })).toBe(90_000);
  });
});
