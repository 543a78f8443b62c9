import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { systemClock } from '../../src/clock.js';
import type { FailureCode, PaymentRecord, PaymentStatus } from '../../src/payments/payment.js';
import { createStateMachine } from '../../src/payments/state-machine.js';
import type { Service } from '../../src/composition/service.js';
import { waitFor } from './api.js';

/** How the receiver answers one request. */
export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  /** Answer only after this long (a slow receiver, or one past the sender's timeout). */
  delayMs?: number;
}

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The Standard Webhooks signature checked out with the shared secret. */
  verified: boolean;
  payload: { type: string; timestamp: string; data: { id: string; status: string } } | null;
  webhookId: string;
  receivedAt: number;
  /** What it was answered (after the plan ran). */
  reply: Reply;
}

export interface WebhookReceiver {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  origin: string;
  received: ReceivedRequest[];
  /** The next requests matching `match` get these replies in order; others get 200. */
  plan(match: (r: ReceivedRequest) => boolean, replies: Reply[]): void;
  forPayment(paymentId: string, path?: string): ReceivedRequest[];
  waitFor(predicate: (received: ReceivedRequest[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

function verify(
  secret: string,
  body: string,
  headers: IncomingHttpHeaders,
): { verified: boolean; payload: ReceivedRequest['payload'] } {
  try {
    const payload = new Webhook(secret).verify(body, {
      'webhook-id': String(headers['webhook-id']),
      'webhook-timestamp': String(headers['webhook-timestamp']),
      'webhook-signature': String(headers['webhook-signature']),
    }) as ReceivedRequest['payload'];
    return { verified: true, payload };
  } catch {
    return { verified: false, payload: null };
  }
}

/**
 * A real webhook receiver on 127.0.0.1:0 that verifies signatures with the standardwebhooks
 * package (as a shop would), records every request, and answers as scripted per request.
 */
export async function startWebhookReceiver(options: { secret: string }): Promise<WebhookReceiver> {
  const received: ReceivedRequest[] = [];
  const plans: { match: (r: ReceivedRequest) => boolean; replies: Reply[] }[] = [];

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const { verified, payload } = verify(options.secret, body, req.headers);
      const entry: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
        verified,
        payload,
        webhookId: String(req.headers['webhook-id'] ?? ''),
        receivedAt: Date.now(),
        reply: {},
      };
      const plan = plans.find((p) => p.replies.length > 0 && p.match(entry));
      entry.reply = plan?.replies.shift() ?? {};
      received.push(entry);
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(entry.reply.status ?? 200, entry.reply.headers ?? {}).end('ok');
      };
      if (entry.reply.delayMs) setTimeout(send, entry.reply.delayMs).unref();
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    received,
    plan(match, replies) {
      plans.push({ match, replies: [...replies] });
    },
    forPayment(paymentId, path) {
      return received.filter((r) => r.payload?.data.id === paymentId && (path === undefined || r.path === path));
    },
    async waitFor(predicate, timeoutMs = 10_000) {
      await waitFor(
        () => predicate(received),
        timeoutMs,
        () => `a webhook receiver condition (${received.length} received)`,
      );
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}

// ---- Starting the real service against a receiver, and making payments without a bank ----

/** A random `whsec_` secret, as a shop would configure it. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** What a service under webhook and stream tests runs with (`startTestService({ bank: 'none', env })`). */
export const WEBHOOK_TEST_ENV: Record<string, string> = {
  SHOP_API_KEY: 'shop_test_key_0123456789',
  WEBHOOK_RETRY_SCHEDULE: '0,1,2,4',
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_TIMEOUT_MS: '500',
  SHUTDOWN_TIMEOUT_MS: '1000',
};

/** A state machine on the service's store; the first poll is parked an hour out, so no bank is asked. */
export function paymentMover(service: Service) {
  const machine = createStateMachine({ store: service.store, clock: systemClock, webhookTargets: { global: true } });
  return {
    async create(record: PaymentRecord): Promise<PaymentRecord> {
      const result = await machine.create(record, { member: `poll:${record.id}`, at: Date.now() + 3_600_000 });
      if (result !== 'ok') throw new Error(`create: ${result}`);
      return record;
    },
    async move(id: string, to: PaymentStatus, failureCode?: FailureCode): Promise<PaymentRecord> {
      const current = await service.store.get(id);
      if (!current) throw new Error(`no payment ${id}`);
      const result = await machine.transition(current, to, failureCode ? { failureCode } : {});
      if (result !== 'ok') throw new Error(`transition to ${to}: ${result}`);
      const next = await service.store.get(id);
      if (!next) throw new Error(`no payment ${id}`);
      return next;
    },
  };
}
