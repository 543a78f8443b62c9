import type { Cluster } from 'ioredis';

type RedirectHandlers = { ask: (slot: string, address: string) => void };

/**
 * Works around an ioredis 5.11 pipeline bug (lib/Pipeline.ts fillResult, unchanged in 6.0) that
 * killed a worker during a slot migration. When every command of a pipeline is answered ASK,
 * ioredis first rebuilds the pipeline's queue with an ASKING before each command and only then asks
 * `handleError` whether to follow; if the redirection budget (`maxRedirections`, spent by the
 * TRYAGAIN rounds a half-migrated multi-key script meets) has just run out, it resolves the pipeline
 * from the rebuilt queue against the old replies: N commands get fewer than N results (none for one
 * command), and auto-pipelining then throws "results[i] is not iterable" in a nextTick, an uncaught
 * exception that ends the process. So an ASK is followed even when the budget is spent. That is
 * bounded: the ASKINGs of the followed round succeed, and a pipeline with a successful non-read
 * command is never retried again (its replies, errors included, go back to the caller); a single
 * command spends its budget on the importing node's next answer (TRYAGAIN or MOVED), which is not ASK.
 */
export function followAskPastRedirectionBudget(cluster: Cluster): void {
  const handleError = cluster.handleError.bind(cluster);
  cluster.handleError = (error: Error, ttl: { value?: number }, handlers: RedirectHandlers) => {
    const ask = /^ASK (\d+) (\S+)$/.exec(error.message);
    // handleError sets the budget on the first redirection and spends one on each later one.
    const spent = ttl.value === undefined ? (cluster.options.maxRedirections ?? 16) <= 0 : ttl.value <= 1;
    if (ask && spent) handlers.ask(ask[1] ?? '', ask[2] ?? '');
    else handleError(error, ttl, handlers);
  };
}
