/**
 * Exponential backoff with full jitter (so many payments failing together do not retry together),
 * never shorter than the server's Retry-After.
 */
export function backoffMs(
  attempt: number,
  options: { baseMs?: number; maxMs?: number; retryAfterMs?: number } = {},
): number {
  const base = options.baseMs ?? 1000;
  const max = options.maxMs ?? 60_000;
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 20));
  const jittered = ceiling / 2 + Math.random() * (ceiling / 2);
  return Math.max(options.retryAfterMs ?? 0, Math.round(jittered));
}
