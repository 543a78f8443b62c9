import express from 'express';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { waitFor } from '../support/api.js';
import { createErrorHandler } from '../../src/http/problem.js';
import { createSseRoutes } from '../../src/http/sse-routes.js';
import { createStreamSlots, type StreamSlots } from '../../src/http/stream-slots.js';
import { createLogger } from '../../src/logger.js';
import { isStoreUnavailableError } from '../../src/store/redis.js';
import { createChangeFeed } from '../../src/webhooks/change-feed.js';
import type { Service } from '../../src/composition/service.js';
import { newTestPayment } from '../support/payments.js';
import { newWebhookSecret, paymentMover, WEBHOOK_TEST_ENV } from '../support/webhook-receiver.js';
import { startTestService, type TestService } from '../support/service.js';

let svc: TestService;
let service: Service;
let apiOnly: Service;
let mover: ReturnType<typeof paymentMover>;

beforeAll(async () => {
  // No WEBHOOK_URL: this file is about the event stream only.
  // Ten watchers of one payment below: more than the default per-payment cap.
  svc = await startTestService({
    bank: 'none',
    env: { ...WEBHOOK_TEST_ENV, WEBHOOK_SECRET: newWebhookSecret(), SSE_MAX_STREAMS_PER_PAYMENT: '20' },
  });
  service = svc.service;
  apiOnly = await svc.startAnother({ ROLE: 'api' });
  mover = paymentMover(service);
});

afterAll(async () => {
  await svc.close();
});

interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
  retry?: string;
}

/** A minimal EventSource over undici: frames as they arrive, and whether the server ended the stream. */
async function openEvents(url: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const res = await request(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal });
  const frames: SseFrame[] = [];
  const state = { ended: false };
  const reading = (async () => {
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        buffer += (chunk as Buffer).toString('utf8');
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const frame: SseFrame = {};
          for (const line of block.split('\n')) {
            const m = /^(id|event|data|retry): ?(.*)$/.exec(line);
            if (m?.[1]) frame[m[1] as keyof SseFrame] = m[2] ?? '';
          }
          if (Object.keys(frame).length > 0) frames.push(frame);
        }
      }
      state.ended = true;
    } catch {
      // aborted by the test
    }
  })();
  return {
    status: res.statusCode,
    headers: res.headers,
    frames,
    events: () => frames.filter((f) => f.event !== undefined),
    state,
    ended: reading,
    async waitFor(predicate: () => boolean, timeoutMs = 5000) {
      await waitFor(predicate, timeoutMs, () => `an SSE condition (${JSON.stringify(frames)})`);
    },
    close() {
      controller.abort();
    },
  };
}

const statusOf = (f: SseFrame) => (JSON.parse(f.data ?? '{}') as { status?: string }).status;

describe('GET /payments/{id}/events', () => {
  test('when a payment changes status, then the client gets each change as an SSE event, and the stream ends after a terminal status', async () => {
    const { record, clientSecret } = newTestPayment();
    await mover.create(record);
    const sse = await openEvents(`${service.url ?? ''}/payments/${record.id}/events`, {
      authorization: `Bearer ${clientSecret}`,
    });
    expect(sse.status).toBe(200);
    expect(sse.headers['content-type']).toContain('text/event-stream');
    expect(sse.headers['cache-control']).toBe('no-store');
    expect(sse.headers['x-accel-buffering']).toBe('no');

    await sse.waitFor(() => sse.events().length === 1);
    expect(sse.frames[0]?.retry).toBe('3000');
    await mover.move(record.id, 'authorized');
    await sse.waitFor(() => sse.events().length === 2);
    await mover.move(record.id, 'processing');
    await mover.move(record.id, 'succeeded');
    await sse.ended;

    expect(sse.state.ended).toBe(true);
    const events = sse.events();
    expect(events.map((f) => f.event)).toEqual([
      'payment.pending_authorization',
      'payment.authorized',
      'payment.processing',
      'payment.succeeded',
    ]);
    expect(events.map(statusOf)).toEqual(['pending_authorization', 'authorized', 'processing', 'succeeded']);
    // An event's id is its 1-based position in the payment's event log.
    expect(events.map((f) => f.id)).toEqual(['1', '2', '3', '4']);
    expect(JSON.parse(events[0]?.data ?? '{}')).toMatchObject({ id: record.id, amount: 1290, currency: 'eur' });
    expect(events[0]?.data).not.toContain('secret');
  });

  test('when the client resumes with Last-Event-ID (or ?last_event_id=), then it gets only the later events', async () => {
    const { record, clientSecret } = newTestPayment();
    await mover.create(record);
    await mover.move(record.id, 'authorized');
    const first = await openEvents(`${service.url ?? ''}/payments/${record.id}/events?client_secret=${clientSecret}`);
    await first.waitFor(() => first.events().length === 2);
    first.close();
    const [pending, authorized] = first.events();

    await mover.move(record.id, 'canceled');
    const resumed = await openEvents(
      `${service.url ?? ''}/payments/${record.id}/events?client_secret=${clientSecret}`,
      {
        'last-event-id': pending?.id ?? '',
      },
    );
    await resumed.ended;
    expect(resumed.events().map((f) => f.id)).toEqual([authorized?.id, expect.any(String)]);
    expect(resumed.events().map((f) => f.event)).toEqual(['payment.authorized', 'payment.canceled']);

    const byQuery = await openEvents(
      `${service.url ?? ''}/payments/${record.id}/events?client_secret=${clientSecret}&last_event_id=${authorized?.id ?? ''}`,
    );
    await byQuery.ended;
    expect(byQuery.events().map((f) => f.event)).toEqual(['payment.canceled']);

    // Resuming after the terminal event: the stream ends at once, with nothing sent twice.
    const done = await openEvents(`${service.url ?? ''}/payments/${record.id}/events?client_secret=${clientSecret}`, {
      'last-event-id': resumed.events()[1]?.id ?? '',
    });
    await done.ended;
    expect(done.events()).toHaveLength(0);
  });

  test('when the client secret is missing or wrong, then 404 as for an unknown payment', async () => {
    const { record } = newTestPayment();
    await mover.create(record);
    for (const headers of [{}, { authorization: `Bearer ${record.id}_secret_wrong` }]) {
      const res = await request(`${service.url ?? ''}/payments/${record.id}/events`, { headers });
      expect(res.statusCode).toBe(404);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(((await res.body.json()) as { code: string }).code).toBe('payment_not_found');
    }
  });

  test('when another instance changes the payment, then a client of an API-only instance sees it (pub/sub)', async () => {
    const { record, clientSecret } = newTestPayment();
    await mover.create(record);
    const sse = await openEvents(`${apiOnly.url ?? ''}/payments/${record.id}/events`, {
      authorization: `Bearer ${clientSecret}`,
    });
    await sse.waitFor(() => sse.events().length === 1);
    const changedAt = Date.now();
    await mover.move(record.id, 'failed', 'access_denied');
    await sse.ended;
    expect(sse.events().map((f) => f.event)).toEqual(['payment.pending_authorization', 'payment.failed']);
    expect(JSON.parse(sse.events()[1]?.data ?? '{}')).toMatchObject({
      status: 'failed',
      failure_code: 'access_denied',
    });
    expect(Date.now() - changedAt).toBeLessThan(1000);
  });

  test('when many clients watch and leave, then changes still reach the ones that stay', async () => {
    const { record, clientSecret } = newTestPayment();
    await mover.create(record);
    const url = `${service.url ?? ''}/payments/${record.id}/events`;
    const clients = await Promise.all(
      Array.from({ length: 10 }, () => openEvents(url, { authorization: `Bearer ${clientSecret}` })),
    );
    await Promise.all(clients.map((c) => c.waitFor(() => c.events().length === 1)));
    for (const c of clients.slice(0, 5)) c.close();
    await mover.move(record.id, 'canceled');
    const staying = clients.slice(5);
    await Promise.all(staying.map((c) => c.ended));
    expect(staying.every((c) => c.events().length === 2 && c.state.ended)).toBe(true);
  });
});

/** The SSE routes alone on 127.0.0.1:0 over the test service's store, with their own feed and slots. */
async function startSseApp(slots: StreamSlots, heartbeatMs?: number) {
  const logger = createLogger('silent');
  const feed = createChangeFeed({ redis: service.redis, keys: service.keys, logger });
  const app = express();
  app.use(
    createSseRoutes({
      store: service.store,
      redis: service.redis,
      keys: service.keys,
      feed,
      logger,
      shopApiKey: undefined,
      slots,
      ...(heartbeatMs !== undefined ? { heartbeatMs } : {}),
    }),
  );
  app.use(createErrorHandler(logger, isStoreUnavailableError));
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, feed, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('SSE stream lifecycle', () => {
  test('when the stream is idle, then heartbeats flow; when the client leaves, then its listener is removed', async () => {
    const { server, feed } = await startSseApp(createStreamSlots({ perPayment: 5, total: 100 }), 50);
    try {
      const { record, clientSecret } = newTestPayment();
      await mover.create(record);
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/payments/${record.id}/events`;
      const res = await request(url, { headers: { authorization: `Bearer ${clientSecret}` } });
      let text = '';
      const reading = (async () => {
        for await (const chunk of res.body) text += (chunk as Buffer).toString('utf8');
      })().catch(() => undefined);
      await waitFor(() => text.split(': ping').length >= 3, 3000, 'two heartbeats');
      expect(text.split(': ping\n\n').length).toBeGreaterThanOrEqual(3);
      // Heartbeats start before the subscription is confirmed (slower on a cluster): wait for it.
      await waitFor(() => feed.listenerCount() > 0, 3000, 'the subscription');
      expect(feed.listenerCount()).toBe(1);

      res.body.destroy();
      await reading;
      await waitFor(() => feed.listenerCount() === 0, 2000, 'the listener to be removed');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
      await feed.close();
    }
  });
});

describe('SSE stream caps (issue 11.6)', () => {
  test('when a payment or the process has as many streams as allowed, then 429 or 503 until one closes', async () => {
    const slots = createStreamSlots({ perPayment: 2, total: 3 });
    const { server, feed, base } = await startSseApp(slots);
    const payments = [newTestPayment(), newTestPayment(), newTestPayment()];
    for (const p of payments) await mover.create(p.record);
    const open = (i: number) =>
      openEvents(`${base}/payments/${payments[i]!.record.id}/events`, {
        authorization: `Bearer ${payments[i]!.clientSecret}`,
      });
    const refused = async (i: number) =>
      request(`${base}/payments/${payments[i]!.record.id}/events`, {
        headers: { authorization: `Bearer ${payments[i]!.clientSecret}` },
      }).then(async (r) => ({
        status: r.statusCode,
        retryAfter: r.headers['retry-after'],
        body: (await r.body.json()) as { code: string },
      }));
    try {
      const a1 = await open(0);
      await open(0);
      const third = await refused(0);
      expect(third).toMatchObject({ status: 429, body: { code: 'too_many_streams' } });
      expect(Number(third.retryAfter)).toBeGreaterThanOrEqual(1);
      await open(1);
      expect(slots.open()).toBe(3);
      expect(await refused(2)).toMatchObject({ status: 503, body: { code: 'stream_capacity_reached' } });

      a1.close();
      await waitFor(() => slots.open() <= 2, 5000, 'the closed stream to free its slot');
      expect(slots.open()).toBe(2);
      await open(2);
      expect(slots.open()).toBe(3);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
      await feed.close();
    }
  });
});
