import { decodeEventLog } from '../../src/payments/event-log.js';
import { waitFor } from '../support/api.js';
import { type Reply } from '../support/scripted-op.js';
import { type StartedPayment, useConformanceHarness } from '../support/service-against-op.js';
import { PAYMENT_FIELD } from '../../src/store/payment-hash.js';

/**
 * Money that moved is never reported failed (issue 11.3): when a payment call's outcome is unknown
 * and can no longer be learnt by asking again, only the bank's reconciliation lookup
 * (`GET /api/payments?end_to_end_id=`) settles the payment. The scripted bank books a transfer and
 * drops the answer, refuses later calls with 401, or is unavailable for lookups.
 */

const h = useConformanceHarness();
const { advanceTo } = h;

const dropAfterBooking: Reply = { status: 500, hangUp: true, book: true };
const dropWithoutBooking: Reply = { status: 500, hangUp: true };
const expiredToken: Reply = { status: 401, json: { error: 'invalid_token' } };

async function approveAndPoll(): Promise<StartedPayment> {
  const p = await h.svc.start();
  h.op.approve(p.authReqId);
  advanceTo((await h.svc.nextPollAt(p))!);
  return p;
}

const lookups = (p: StartedPayment) => h.op.requestsTo('lookup').filter((r) => r.query.end_to_end_id === p.id);

/** Moves the shared clock to each due submit (retries, the reconciliation wait) until the payment settles. */
async function driveUntilSettled(p: StartedPayment, timeoutMs = 10_000) {
  await h.svc.drive(p, async () => ['succeeded', 'failed'].includes((await h.svc.status(p)).status), timeoutMs);
  return h.svc.status(p);
}

/** Every status the payment's event log shows, in order (what SSE and webhooks announced). */
async function statusHistory(p: StartedPayment): Promise<string[]> {
  const hash = await h.svc.service.redis.hgetall(h.svc.service.keys.payment(p.id));
  return decodeEventLog(hash, p.id).map((e) => e?.status ?? '?');
}

async function metric(name: string): Promise<string> {
  return h.svc.service.metrics.registry.getSingleMetricAsString(name);
}

test('booked, answer lost, then 401: succeeded after exactly one lookup, with the bank id, never failed on the way', async () => {
  h.op.script('payments', dropAfterBooking, expiredToken);
  const p = await approveAndPoll();
  const final = await driveUntilSettled(p);
  expect(final).toMatchObject({ status: 'succeeded', failure_code: null });
  expect(p.paymentCalls()).toHaveLength(2);
  expect(lookups(p)).toHaveLength(1);
  const lookup = lookups(p)[0]!;
  expect(lookup.headers.authorization).toBeUndefined();
  expect(lookup.clientCert).toMatchObject({ subject: 'CN=client', authorized: true });
  // the lookup waited until the last call could no longer be in flight (2 × BANK_TIMEOUT_MS)
  const record = await h.svc.service.store.get(p.id);
  expect(lookup.at - record!.bankCalledAt!).toBeGreaterThanOrEqual(4000);
  expect(record?.bankPaymentId).toBe(h.op.bookings.find((b) => b.endToEndId === p.id)?.bankPaymentId);
  expect(await statusHistory(p)).toEqual(['pending_authorization', 'authorized', 'processing', 'succeeded']);
  expect(h.op.bookings.filter((b) => b.endToEndId === p.id)).toHaveLength(1);
  expect(await metric('payment_reconciliations_total')).toMatch(/outcome="succeeded"\} 1/);
});

test('nothing booked, answer lost, then 401: failed/bank_rejected after exactly one lookup', async () => {
  h.op.script('payments', dropWithoutBooking, expiredToken);
  const p = await approveAndPoll();
  const final = await driveUntilSettled(p);
  expect(final).toMatchObject({ status: 'failed', failure_code: 'bank_rejected' });
  expect(p.paymentCalls()).toHaveLength(2);
  expect(lookups(p)).toHaveLength(1);
  expect(await statusHistory(p)).toEqual(['pending_authorization', 'authorized', 'processing', 'failed']);
  expect(await metric('payment_reconciliations_total')).toMatch(/outcome="failed"\} 1/);
});

test('a 401 on the first call (no earlier attempt known): one lookup after its own in-flight grace, nothing booked → failed/bank_rejected', async () => {
  h.op.script('payments', expiredToken);
  const p = await approveAndPoll();
  expect(await driveUntilSettled(p)).toMatchObject({ status: 'failed', failure_code: 'bank_rejected' });
  expect(p.paymentCalls()).toHaveLength(1);
  expect(lookups(p)).toHaveLength(1);
  // Not at once: a worker that took the submit over after an expired lease may have a call in flight
  // that this refusal says nothing about; the lookup waits 2 × BANK_TIMEOUT_MS (2 s here) after the note.
  expect(lookups(p)[0]!.at - p.paymentCalls()[0]!.at).toBeGreaterThanOrEqual(4000);
});

test('booked, answer lost, the note of that attempt lost (a failover), then 401: succeeded by the lookup, never failed', async () => {
  h.op.script('payments', { status: 503, headers: { 'retry-after': '60' }, book: true }, expiredToken);
  const p = await approveAndPoll();
  const { redis, keys } = h.svc.service;
  await waitFor(
    async () => (await redis.zscore(keys.dueOf(p.id).key, `submit:${p.id}`)) !== null,
    10_000,
    'the retry to be scheduled',
  );
  // What a promoted replica that never had `bank_at` looks like.
  await redis.hdel(keys.payment(p.id), PAYMENT_FIELD.bankCalledAt);
  const final = await driveUntilSettled(p);
  expect(final).toMatchObject({ status: 'succeeded', failure_code: null });
  expect(p.paymentCalls()).toHaveLength(2);
  expect(lookups(p)).toHaveLength(1);
  expect(await statusHistory(p)).toEqual(['pending_authorization', 'authorized', 'processing', 'succeeded']);
  expect(h.op.bookings.filter((b) => b.endToEndId === p.id)).toHaveLength(1);
});

test('lookup unavailable: stays processing, looked up again with backoff, counted and logged; settles when the bank answers', async () => {
  h.op.script('payments', dropAfterBooking, expiredToken);
  h.op.script('lookup', { status: 503 }, { status: 200, hangUp: true });
  const p = await approveAndPoll();
  await h.svc.drive(p, () => lookups(p).length >= 1);
  await waitFor(
    async () => /alarm="reconciliation_unavailable"\} [1-9]/.test(await metric('operator_alarms_total')),
    5000,
    'the alarm',
  );
  expect((await h.svc.status(p)).status).toBe('processing');
  const alarm = h.svc.logs.find((l) => l.includes(p.id) && l.includes('reconciliation lookup is unavailable'));
  expect(JSON.parse(alarm!)).toMatchObject({ level: 50, reason: 'http_503' });

  const final = await driveUntilSettled(p, 15_000);
  expect(final).toMatchObject({ status: 'succeeded' });
  expect(lookups(p)).toHaveLength(3);
  expect(await metric('payment_reconciliations_total')).toMatch(/outcome="unavailable"\} 2/);
  expect(await metric('operator_alarms_total')).toMatch(/alarm="reconciliation_unavailable"\} 2/);
  expect(p.paymentCalls()).toHaveLength(2);
  expect(await statusHistory(p)).not.toContain('failed');
});

test('the access token expired while the outcome was unknown: reconciled by lookup, no call with the expired token', async () => {
  h.op.script('payments', dropAfterBooking);
  const p = await approveAndPoll();
  await waitFor(() => Promise.resolve(p.paymentCalls().length === 1), 5000, 'the first call');
  // the token lived 300 s (expires_in at the scripted OP)
  h.clock.advance(301_000);
  const final = await driveUntilSettled(p);
  expect(final).toMatchObject({ status: 'succeeded' });
  expect(p.paymentCalls()).toHaveLength(1);
  expect(lookups(p)).toHaveLength(1);
});

test('a sealed token moved to another payment does not open there (AAD): reconciled, never sent to the bank', async () => {
  h.op.script('payments', { status: 503 }, { status: 503 });
  const a = await approveAndPoll();
  const b = await approveAndPoll();
  await waitFor(() => Promise.resolve(a.paymentCalls().length === 1 && b.paymentCalls().length === 1), 5000, 'calls');
  const { redis, keys } = h.svc.service;
  const tokenOfA = await redis.hget(keys.payment(a.id), PAYMENT_FIELD.sealedAccessToken);
  expect(tokenOfA).toBeTruthy();
  await redis.hset(keys.payment(b.id), PAYMENT_FIELD.sealedAccessToken, tokenOfA!);
  const finalB = await driveUntilSettled(b);
  // b's own first call got a 503 (nothing booked), and a's token never went out under b's key
  expect(finalB).toMatchObject({ status: 'failed', failure_code: 'bank_rejected' });
  expect(b.paymentCalls()).toHaveLength(1);
  expect(lookups(b)).toHaveLength(1);
  expect(h.svc.logs.some((l) => l.includes(b.id) && l.includes('access token cannot be opened'))).toBe(true);
  expect(await driveUntilSettled(a)).toMatchObject({ status: 'succeeded' });
});
