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

/**
 * Runs `step` again in the background, with backoff, until it succeeds or `untilMs` (epoch ms) would
 * pass: for steps that are safe to send again and must not be lost to a short store outage.
 */
export function retryInBackground(
  step: () => Promise<unknown>,
  untilMs: number,
  options: { baseMs: number; maxMs: number },
  attempt = 0,
): void {
  const delay = backoffMs(attempt, options);
  if (Date.now() + delay > untilMs) return;
  setTimeout(() => {
    step().catch(() => {
      retryInBackground(step, untilMs, options, attempt + 1);
    });
  }, delay).unref();
}
