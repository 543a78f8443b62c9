import type { Cluster } from 'ioredis';

interface RedirectHandlers {
  ask: (slot: string, address: string) => void;
}
/** ioredis' redirection budget of one command or pipeline, plus our mark (see below). */
interface RedirectBudget {
  value?: number;
  askFollowedPastBudget?: boolean;
}
type HandleError = (error: Error, ttl: RedirectBudget, handlers: RedirectHandlers) => void;

/**
 * Works around an ioredis 5.11 pipeline bug (lib/Pipeline.ts fillResult, unchanged in 6.0) that
 * killed a worker during a slot migration. When every command of a pipeline is answered ASK,
 * ioredis first rebuilds the pipeline's queue with an ASKING before each command and only then asks
 * `handleError` whether to follow; if the redirection budget (`maxRedirections`, spent by the
 * TRYAGAIN rounds a half-migrated multi-key script meets) has just run out, it resolves the pipeline
 * from the rebuilt queue against the old replies: N commands get fewer than N results (none for one
 * command), and auto-pipelining then throws "results[i] is not iterable" in a nextTick, an uncaught
 * exception that ends the process. So the first ASK met with the budget spent is followed once more;
 * anything after it goes to ioredis as before (the budget stays spent: an error for the caller).
 * A pipeline so followed is not retried again anyway: its ASKINGs succeed, and ioredis retries a
 * pipeline only when no command other than a read succeeded.
 */
export function followAskPastRedirectionBudget(cluster: Cluster): void {
  const handleError: HandleError = cluster.handleError.bind(cluster);
  const withOneMoreAsk: HandleError = (error, ttl, handlers) => {
    const ask = /^ASK (\d+) (\S+)$/.exec(error.message);
    // handleError sets the budget on the first redirection and spends one on each later one.
    const spent = ttl.value === undefined ? (cluster.options.maxRedirections ?? 16) <= 0 : ttl.value <= 1;
    if (ask && spent && !ttl.askFollowedPastBudget) {
      ttl.askFollowedPastBudget = true;
      handlers.ask(ask[1] ?? '', ask[2] ?? '');
    } else handleError(error, ttl, handlers);
  };
  cluster.handleError = withOneMoreAsk;
}
