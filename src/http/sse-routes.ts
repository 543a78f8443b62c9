import { Router, type Request, type Response } from 'express';
import type { Logger } from '../logger.js';
import { isTerminal } from '../payments/payment.js';
import type { PaymentStore } from '../payments/ports.js';
import type { ChangeFeed } from '../webhooks/change-feed.js';
import { EVENT_POSITION_PATTERN, readPaymentEvents, type EventLogSource } from '../webhooks/event-log-reader.js';
import { loadAuthorizedPayment } from './payment-access.js';
import type { StreamSlots } from './stream-slots.js';
import { z } from 'zod';
import {
  idParams,
  eventStreamAuth,
  paymentDoc,
  paymentExample,
  succeededExample,
  type OpenApiBuilder,
} from './openapi-builder.js';

export interface SseRouteDeps extends EventLogSource {
  store: PaymentStore;
  feed: ChangeFeed;
  logger: Logger;
  shopApiKey: string | undefined;
  /** Open streams per payment and per process (SSE_MAX_STREAMS_PER_PAYMENT, SSE_MAX_STREAMS). */
  slots: StreamSlots;
  /** Comment lines keep proxies and load balancers from closing an idle stream. */
  heartbeatMs?: number;
  /** The `retry:` hint: how long a browser's EventSource waits before reconnecting. */
  retryMs?: number;
}

/**
 * Where to resume: the `Last-Event-ID` header an EventSource sends on reconnect, or `?last_event_id=`:
 * the position of the last event seen (0 = from the start; anything else unknown replays everything).
 */
function resumeFrom(req: Request): number {
  const header = req.get('last-event-id');
  const query = req.query.last_event_id;
  const value = header ?? (typeof query === 'string' ? query : undefined);
  return value && EVENT_POSITION_PATTERN.test(value) ? Number(value) : 0;
}

function openStream(res: Response, retryMs: number): void {
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Connection', 'keep-alive');
  res.setHeader('X-Accel-Buffering', 'no'); // nginx: do not buffer the stream
  res.flushHeaders();
  res.write(`retry: ${retryMs}\n\n`);
}

/**
 * GET /payments/{id}/events (DESIGN.md): server-sent events of the payment's status changes, with
 * the same auth as GET /payments/{id}. Replays the payment's event log after Last-Event-ID (an
 * event's id is its 1-based position in the log), then follows live changes; every wake-up re-reads
 * the log after the last position sent, so nothing is missed or sent twice. Ends after a terminal status.
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html
 */
export function createSseRoutes(deps: SseRouteDeps): Router {
  const router = Router();
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const retryMs = deps.retryMs ?? 3000;

  router.get('/payments/:id/events', async (req, res) => {
    const { payment } = await loadAuthorizedPayment(req, deps, { allowQuerySecret: true });
    res.on('close', deps.slots.take(payment.id));
    const session = createStreamSession(deps, res, payment.id, resumeFrom(req));
    req.on('close', session.finish);
    openStream(res, retryMs);
    session.startHeartbeat(heartbeatMs);
    // Listen before the first read, so a change between the read and the subscription is not lost.
    session.attach(await deps.feed.listen(payment.id, session.wake));
    await session.drain();
    // Resumed after the terminal event: nothing more will come.
    if (isTerminal(payment.status)) session.finish();
  });

  return router;
}

/**
 * Writes `events` in order, advancing `state.lastId`; true when the stream is done (the client
 * left, or a terminal status was just written).
 */
function writeEvents(
  res: Response,
  events: Awaited<ReturnType<typeof readPaymentEvents>>,
  state: { lastId: number; closed: boolean },
): boolean {
  for (const e of events) {
    if (state.closed) return true;
    res.write(`id: ${e.position}\nevent: payment.${e.status}\ndata: ${JSON.stringify(e.data)}\n\n`);
    state.lastId = e.position;
    if (isTerminal(e.status)) return true;
  }
  return false;
}

/**
 * One client's stream: sends every event after the last id sent; one read at a time, read again
 * when a change arrived meanwhile; finishes after a terminal status or when the client leaves.
 */
function createStreamSession(deps: SseRouteDeps, res: Response, paymentId: string, resumeAt: number) {
  const state = { lastId: resumeAt, closed: false, again: false, pumping: null as Promise<void> | null };
  let unlisten: (() => void) | null = null;
  let heartbeat: NodeJS.Timeout | undefined;

  function finish(): void {
    if (state.closed) return;
    state.closed = true;
    clearInterval(heartbeat);
    unlisten?.();
    res.end();
  }

  /** A change arrived while reading (set by `wake` across the await). */
  function hasMoreWork(): boolean {
    return state.again && !state.closed;
  }

  async function pump(): Promise<void> {
    do {
      state.again = false;
      const events = await readPaymentEvents(deps, paymentId, state.lastId);
      if (writeEvents(res, events, state)) {
        finish();
        return;
      }
    } while (hasMoreWork());
  }

  function wake(): Promise<void> {
    if (state.closed) return Promise.resolve();
    if (state.pumping) {
      state.again = true;
      return state.pumping;
    }
    state.pumping = pump()
      .catch((err: unknown) => {
        deps.logger.warn({ err, paymentId }, 'SSE stream read failed; closing so the client resumes');
        finish();
      })
      .finally(() => {
        state.pumping = null;
        if (state.again) void wake();
      });
    return state.pumping;
  }

  return {
    finish,
    wake: () => void wake(),
    drain: wake,
    startHeartbeat(ms: number) {
      heartbeat = setInterval(() => {
        if (state.closed) return;
        res.write(': ping\n\n');
        // Also a look: a change message lost (a failover, a resubscription) only delays its events.
        void wake();
      }, ms);
    },
    attach(stop: () => void) {
      if (state.closed) stop();
      else unlisten = stop;
    },
  };
}

/** The OpenAPI operations of the route above, declared beside it so both change together. */
export function documentSseRoutes(b: OpenApiBuilder): void {
  const SSE_EXAMPLE = [
    'retry: 3000\n',
    `id: 1795621588993-0\nevent: payment.pending_authorization\ndata: ${JSON.stringify(paymentExample)}\n`,
    `id: 1795621630412-0\nevent: payment.succeeded\ndata: ${JSON.stringify(succeededExample)}\n`,
  ].join('\n');

  b.route({
    method: 'get',
    path: '/payments/{id}/events',
    tags: ['Payments'],
    summary: 'Follow a payment with server-sent events',
    description:
      'A `text/event-stream` of status changes. Each event is named `payment.<status>` and its `data` is the Payment JSON ' +
      '(schema `Payment`); comment lines (`: ping`) keep idle connections open. Resumes after `Last-Event-ID`; the stream ends ' +
      'after a terminal status (`succeeded`, `failed`, `canceled`).',
    security: eventStreamAuth,
    request: {
      params: idParams,
      headers: z.object({
        'Last-Event-ID': z
          .string()
          .optional()
          .openapi({
            param: {
              description:
                "The `id` of the last event received (the event's 1-based position); EventSource sends it when it reconnects.",
            },
            example: '2',
          }),
      }),
      query: z.object({
        last_event_id: z
          .string()
          .optional()
          .openapi({ param: { description: 'The same as `Last-Event-ID`, for clients that cannot set headers.' } }),
      }),
    },
    responses: {
      200: {
        description: 'The event stream.',
        content: b.content(
          'GET /payments/{id}/events 200',
          z.string().openapi({ description: 'Events `payment.<status>` with the Payment as `data`.' }),
          { stream: { summary: 'Pending, then paid', value: SSE_EXAMPLE } },
          'text/event-stream',
        ),
      },
      ...b.problems('GET /payments/{id}/events', [
        'payment_not_found',
        'too_many_streams',
        'stream_capacity_reached',
        'store_unavailable',
      ]),
    },
  });
  for (const [i, data] of [paymentExample, succeededExample].entries()) {
    b.examples.push({ where: `GET /payments/{id}/events 200 (event ${i + 1} data)`, schema: paymentDoc, value: data });
  }
}
