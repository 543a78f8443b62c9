import { parseHookArg } from '../payments/work-items.js';
import { contextFrom, inSpan, SpanKind } from '../tracing.js';
import type { Handler } from './worker-loop.js';

/**
 * Each work item (a token poll, a bank submission, a webhook delivery) as a span of its payment's
 * trace: the traceparent stored when the payment was created (POST /checkout) is its parent, so the
 * trace crosses the API → Redis → worker hop and any number of worker processes (work-items.ts
 * names the items). Without tracing the handlers are returned as they are.
 */
export function traceJobs(
  enabled: boolean,
  traceparentOf: (paymentId: string) => Promise<string | null>,
  handlers: Record<string, Handler>,
): Record<string, Handler> {
  if (!enabled) return handlers;
  const traced = Object.entries(handlers).map(([kind, handler]): [string, Handler] => [
    kind,
    async (arg, item) => {
      const paymentId = kind === 'hook' ? (parseHookArg(arg)?.paymentId ?? arg) : arg;
      const traceparent = await traceparentOf(paymentId);
      const parent = contextFrom(traceparent ? { traceparent } : null);
      return inSpan(
        `job ${kind}`,
        { kind: SpanKind.CONSUMER, parent, attributes: { 'payment.id': paymentId, 'job.kind': kind } },
        () => handler(arg, item),
      );
    },
  ]);
  return Object.fromEntries(traced);
}
