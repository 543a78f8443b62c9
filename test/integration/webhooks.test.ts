import { request } from 'undici';
import type { Service } from '../../src/composition/service.js';
import { createKeys } from '../../src/store/keys.js';
import { newTestPayment } from '../support/payments.js';
import {
  newWebhookSecret,
  paymentMover,
  startWebhookReceiver,
  WEBHOOK_TEST_ENV,
  type ReceivedRequest,
  type WebhookReceiver,
} from '../support/webhook-receiver.js';
import { waitFor } from '../support/api.js';
import { dueMembers } from '../support/due-work.js';
import { deleteKeysWithPrefix } from '../support/redis.js';
import { startTestService, type TestService } from '../support/service.js';

const SHOP_KEY = 'shop_test_key_0123456789';
const secret = newWebhookSecret();
let receiver: WebhookReceiver;
let svc: TestService;
let env: Record<string, string>;
let service: Service;
let mover: ReturnType<typeof paymentMover>;
const figures = { singleMs: [] as number[], burstMs: [] as number[] };

beforeAll(async () => {
  receiver = await startWebhookReceiver({ secret });
  svc = await startTestService({
    bank: 'none',
    env: {
      ...WEBHOOK_TEST_ENV,
      WEBHOOK_URL: `${receiver.origin}/hooks`,
      WEBHOOK_SECRET: secret,
      CALLBACK_ALLOWED_ORIGINS: receiver.origin,
    },
  });
  ({ env, service } = svc);
  mover = paymentMover(service);
});

afterAll(async () => {
  await svc.close();
  await receiver.close();
  process.stdout.write(`webhook figures: ${JSON.stringify(summarize())}\n`);
});

/** Latency from the status change to the receiver's receipt, for the report. */
function summarize() {
  const stats = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const pick = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    return { n: sorted.length, p50Ms: pick(0.5), p95Ms: pick(0.95), maxMs: sorted[sorted.length - 1] };
  };
  return { single: stats(figures.singleMs), burstOf50: stats(figures.burstMs) };
}

const hooks = (paymentId: string) => receiver.forPayment(paymentId, '/hooks');
const delivered = (rs: ReceivedRequest[]) => rs.filter((r) => (r.reply.status ?? 200) === 200);

async function listDeliveries(paymentId: string, key = SHOP_KEY, on: Service = service) {
  const res = await request(`${on.url ?? ''}/webhooks/deliveries?payment_id=${paymentId}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  return { status: res.statusCode, body: (await res.body.json()) as { data: Record<string, unknown>[] } };
}

async function waitForDeliveryState(
  paymentId: string,
  predicate: (ds: Record<string, unknown>[]) => boolean,
  on: Service = service,
) {
  let last: Record<string, unknown>[] = [];
  return waitFor(
    async () => {
      last = (await listDeliveries(paymentId, SHOP_KEY, on)).body.data;
      return predicate(last) && last;
    },
    10_000,
    () => `deliveries to settle: ${JSON.stringify(last)}`,
  );
}

describe('webhook delivery', () => {
  test('when a payment moves through its statuses, then each event arrives once, signed, with Standard Webhooks headers', async () => {
    const { record } = newTestPayment();
    const started = Date.now();
    await mover.create(record);
    await receiver.waitFor(() => hooks(record.id).length === 1);
    const t1 = Date.now();
    await mover.move(record.id, 'authorized');
    await mover.move(record.id, 'processing');
    await mover.move(record.id, 'succeeded');
    await receiver.waitFor(() => hooks(record.id).length === 3);

    const got = hooks(record.id);
    figures.singleMs.push((got[0]?.receivedAt ?? 0) - started, (got[1]?.receivedAt ?? 0) - t1);
    expect(got.map((r) => r.payload?.type)).toEqual([
      'payment.pending_authorization',
      'payment.authorized',
      'payment.succeeded',
    ]);
    for (const r of got) {
      expect(r.verified).toBe(true);
      expect(r.method).toBe('POST');
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.webhookId).toMatch(/^msg_[a-z2-7]{24}$/);
      expect(Number(r.headers['webhook-timestamp'])).toBeGreaterThanOrEqual(Math.floor(started / 1000));
      expect(Number(r.headers['webhook-timestamp'])).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
      expect(r.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/=]{44}$/);
      expect(r.payload?.data).toMatchObject({
        id: record.id,
        amount: 1290,
        currency: 'eur',
        metadata: { order: '42' },
      });
      expect(r.body).not.toContain('secret');
      expect(r.body).not.toContain('arid-test');
    }
    expect(new Set(got.map((r) => r.webhookId)).size).toBe(3);
    expect(await service.metrics.registry.getSingleMetricAsString('webhook_deliveries_total')).toMatch(
      /result="delivered"} \d+/,
    );
    const { body } = await listDeliveries(record.id);
    expect(body.data.map((d) => [d.event_type, d.state, d.attempts])).toEqual([
      ['payment.pending_authorization', 'delivered', 1],
      ['payment.authorized', 'delivered', 1],
      ['payment.succeeded', 'delivered', 1],
    ]);
  });

  test('when the receiver answers 500 then 200, then the event is retried after schedule[1] and recorded as delivered', async () => {
    const { record } = newTestPayment();
    receiver.plan((r) => r.payload?.data.id === record.id, [{ status: 500 }]);
    await mover.create(record);
    await receiver.waitFor(() => delivered(hooks(record.id)).length === 1);

    const got = hooks(record.id);
    expect(got.map((r) => r.reply.status ?? 200)).toEqual([500, 200]);
    expect(got[1]?.webhookId).toBe(got[0]?.webhookId);
    const gap = (got[1]?.receivedAt ?? 0) - (got[0]?.receivedAt ?? 0);
    expect(gap).toBeGreaterThanOrEqual(950); // WEBHOOK_RETRY_SCHEDULE 0,1,…: the second attempt waits 1 s
    expect(gap).toBeLessThan(1600);
    const [d] = await waitForDeliveryState(record.id, (ds) => ds[0]?.state === 'delivered');
    expect(d).toMatchObject({ attempts: 2, last_status: 200, target: 'webhook_url' });
    expect((d?.history as { status: number }[]).map((h) => h.status)).toEqual([500, 200]);
  });

  test('when every attempt fails, then the delivery gives up after the last schedule entry', async () => {
    const { record } = newTestPayment();
    receiver.plan(
      (r) => r.payload?.data.id === record.id,
      [{ status: 503 }, { status: 503 }, { status: 503 }, { status: 503 }],
    );
    await mover.create(record);
    const [d] = await waitForDeliveryState(record.id, (ds) => ds[0]?.state === 'failed');
    expect(d).toMatchObject({ attempts: 4, last_status: 503, last_error: 'http_503', next_attempt_at: null });
    const times = hooks(record.id).map((r) => r.receivedAt);
    expect(times).toHaveLength(4);
    // Schedule 0,1,2,4: attempts at those offsets (seconds) from the first one.
    const first = times[0] ?? 0;
    expect((times[1] ?? 0) - first).toBeGreaterThanOrEqual(950);
    expect((times[2] ?? 0) - first).toBeGreaterThanOrEqual(1950);
    expect((times[3] ?? 0) - first).toBeGreaterThanOrEqual(3950);
    expect((times[3] ?? 0) - first).toBeLessThan(5500);
  });

  test('when the receiver answers 410, then that URL gets nothing more, and other URLs still do', async () => {
    const path = `/gone-${Date.now()}`;
    const { record } = newTestPayment({ callbackUrl: `${receiver.origin}${path}` });
    receiver.plan((r) => r.path === path, [{ status: 410 }, { status: 410 }]);
    await mover.create(record);
    await mover.move(record.id, 'canceled');
    const ds = await waitForDeliveryState(
      record.id,
      (list) => list.length === 4 && list.every((d) => d.state !== 'pending'),
    );

    expect(receiver.received.filter((r) => r.path === path)).toHaveLength(1);
    expect(hooks(record.id)).toHaveLength(2);
    const callbacks = ds.filter((d) => d.target === 'callback_url');
    expect(callbacks.map((d) => [d.state, d.last_error])).toEqual([
      ['gone', 'gone'],
      ['gone', 'target_gone'],
    ]);
    expect(await service.redis.sismember(service.keys.goneTargets, `${receiver.origin}${path}`)).toBe(1);
  });

  test('when the receiver is slower than WEBHOOK_TIMEOUT_MS, then the attempt times out and is retried', async () => {
    const { record } = newTestPayment();
    receiver.plan((r) => r.payload?.data.id === record.id, [{ delayMs: 1500 }]);
    await mover.create(record);
    const [d] = await waitForDeliveryState(record.id, (ds) => ds[0]?.state === 'delivered');
    expect((d?.history as { error: string | null }[]).map((h) => h.error)).toEqual(['timeout', null]);
    expect(hooks(record.id)).toHaveLength(2);
  });

  test('when the receiver redirects, then the redirect is not followed and counts as a failed attempt', async () => {
    const { record } = newTestPayment();
    receiver.plan(
      (r) => r.payload?.data.id === record.id,
      [{ status: 302, headers: { location: `${receiver.origin}/elsewhere` } }],
    );
    await mover.create(record);
    const [d] = await waitForDeliveryState(record.id, (ds) => ds[0]?.state === 'delivered');
    expect((d?.history as { status: number; error: string | null }[]).map((h) => [h.status, h.error])).toEqual([
      [302, 'redirect_not_followed'],
      [200, null],
    ]);
    expect(receiver.received.filter((r) => r.path === '/elsewhere')).toHaveLength(0);
  });

  test('when an earlier event is still being retried, then later events of that payment wait for it (order per payment)', async () => {
    const { record } = newTestPayment();
    receiver.plan(
      (r) => r.payload?.type === 'payment.pending_authorization' && r.payload.data.id === record.id,
      [{ status: 500 }, { status: 500 }],
    );
    await mover.create(record);
    await mover.move(record.id, 'authorized');
    await mover.move(record.id, 'canceled');
    await receiver.waitFor(() => delivered(hooks(record.id)).length === 3);

    const got = hooks(record.id);
    expect(got.map((r) => `${r.payload?.type ?? ''}:${r.reply.status ?? 200}`)).toEqual([
      'payment.pending_authorization:500',
      'payment.pending_authorization:500',
      'payment.pending_authorization:200',
      'payment.authorized:200',
      'payment.canceled:200',
    ]);
    // The receiver can also order by the body's timestamp.
    const stamps = delivered(got).map((r) => Date.parse(r.payload?.timestamp ?? ''));
    expect([...stamps].sort((a, b) => a - b)).toEqual(stamps);
  });

  test('when the shop resends a delivery, then the same event is sent again now; without the shop key it is refused', async () => {
    const { record } = newTestPayment();
    await mover.create(record);
    const [d] = await waitForDeliveryState(record.id, (ds) => ds[0]?.state === 'delivered');
    const id = String(d?.id);

    const denied = await request(`${service.url}/webhooks/deliveries/${id}/resend`, { method: 'POST' });
    expect(denied.statusCode).toBe(401);
    expect(denied.headers['content-type']).toContain('application/problem+json');
    await denied.body.dump();
    const unknown = await request(`${service.url}/webhooks/deliveries/dlv_aaaa_g/resend`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SHOP_KEY}` },
    });
    expect(unknown.statusCode).toBe(404);
    expect(((await unknown.body.json()) as { code: string }).code).toBe('delivery_not_found');

    const res = await request(`${service.url}/webhooks/deliveries/${id}/resend`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SHOP_KEY}` },
    });
    expect(res.statusCode).toBe(202);
    expect(await res.body.json()).toMatchObject({ id, state: 'pending' });
    await receiver.waitFor(() => hooks(record.id).length === 2);
    const got = hooks(record.id);
    expect(got[1]?.webhookId).toBe(got[0]?.webhookId);
    expect(got[1]?.verified).toBe(true);
    const [after] = await waitForDeliveryState(record.id, (ds) => ds[0]?.state === 'delivered' && ds[0].attempts === 2);
    expect(after?.attempts).toBe(2);
  });

  test('when 50 payments are created at once, then every event arrives once (latency figures)', async () => {
    const records = Array.from({ length: 50 }, () => newTestPayment().record);
    const createdAt = new Map<string, number>();
    await Promise.all(
      records.map(async (r) => {
        createdAt.set(r.id, Date.now());
        await mover.create(r);
      }),
    );
    await receiver.waitFor(() => records.every((r) => hooks(r.id).length === 1));
    for (const r of records) figures.burstMs.push((hooks(r.id)[0]?.receivedAt ?? 0) - (createdAt.get(r.id) ?? 0));
    expect(records.every((r) => hooks(r.id)[0]?.verified)).toBe(true);
  });

  test('when listing deliveries without the shop key or with a bad payment id, then 401 and 400 problems', async () => {
    expect((await listDeliveries('pay_aaaaaaaaaaaaaaaaaaaa', 'wrong')).status).toBe(401);
    const bad = await listDeliveries('nope');
    expect(bad.status).toBe(400);
  });
});

describe('webhook delivery across a worker crash', () => {
  test('when the worker dies mid-delivery, then a new worker on the same prefix delivers every event with the same webhook-id', async () => {
    const crashEnv = {
      REDIS_PREFIX: `${env.REDIS_PREFIX ?? ''}crash:`,
      SHUTDOWN_TIMEOUT_MS: '100',
      WEBHOOK_TIMEOUT_MS: '5000',
    };
    const first = await svc.startAnother(crashEnv);
    const firstMover = paymentMover(first);
    const payments = [newTestPayment().record, newTestPayment().record, newTestPayment().record];
    const ids = new Set(payments.map((p) => p.id));
    // The receiver holds every first attempt, so the worker is mid-delivery when it dies.
    receiver.plan(
      (r) => ids.has(r.payload?.data.id ?? ''),
      payments.map(() => ({ delayMs: 4000 })),
    );
    for (const p of payments) await firstMover.create(p);
    await receiver.waitFor(() => payments.every((p) => hooks(p.id).length === 1));
    await first.close();

    // The dead worker's leases would expire within a lease; expire them now instead of waiting.
    const crashShard = createKeys(crashEnv.REDIS_PREFIX).shard(0); // test payments are born in shard 0
    const leased = await service.redis.zrange(crashShard.leases, 0, -1);
    const waiting = await dueMembers(service.redis, crashShard);
    // Nothing was delivered: all three deliveries are still held (leased) or waiting to be retried.
    expect([...leased, ...waiting].filter((m) => m.startsWith('hook:'))).toHaveLength(3);
    for (const m of leased) await service.redis.zadd(crashShard.leases, 'XX', 0, m);

    const second = await svc.startAnother(crashEnv);
    try {
      const answered = (id: string) => hooks(id).filter((r) => r.reply.delayMs === undefined);
      await receiver.waitFor(() => payments.every((p) => answered(p.id).length > 0));
      const [one] = await waitForDeliveryState(payments[0]?.id ?? '', (ds) => ds[0]?.state === 'delivered', second);
      expect(one?.attempts).toBeGreaterThanOrEqual(1);
      for (const p of payments) {
        const got = hooks(p.id);
        expect(got.length).toBeGreaterThanOrEqual(2); // the held attempt, then the new worker's
        expect(got[0]?.reply.delayMs).toBe(4000);
        expect(new Set(got.map((r) => r.webhookId)).size).toBe(1); // at-least-once, one webhook-id
        expect(got.every((r) => r.verified)).toBe(true);
      }
    } finally {
      await second.close();
      await deleteKeysWithPrefix(crashEnv.REDIS_PREFIX);
    }
  });
});

describe('SSRF guard', () => {
  test('when private targets are not allowed, then 127.0.0.1 and a name resolving to loopback are refused without a request', async () => {
    const port = new URL(receiver.origin).port;
    const guardedEnv = {
      REDIS_PREFIX: `${env.REDIS_PREFIX ?? ''}ssrf:`,
      WEBHOOK_ALLOW_PRIVATE: 'false',
      WEBHOOK_URL: `http://localhost:${port}/hooks`,
      CALLBACK_ALLOWED_ORIGINS: receiver.origin,
    };
    const guarded = await svc.startAnother(guardedEnv);
    try {
      const { record } = newTestPayment({ callbackUrl: `${receiver.origin}/cb` });
      await paymentMover(guarded).create(record);
      const list = await waitForDeliveryState(
        record.id,
        (ds) => ds.length === 2 && ds.every((d) => d.state === 'failed'),
        guarded,
      );
      expect(list.map((d) => [d.target, d.state, d.last_error, d.attempts])).toEqual(
        expect.arrayContaining([
          ['webhook_url', 'failed', 'blocked_address', 1],
          ['callback_url', 'failed', 'blocked_address', 1],
        ]),
      );
      expect(receiver.forPayment(record.id)).toHaveLength(0);
    } finally {
      await guarded.close();
      await deleteKeysWithPrefix(guardedEnv.REDIS_PREFIX);
    }
  });
});
