import { type Reply } from '../support/scripted-op.js';
import { type StartedPayment, useConformanceHarness } from '../support/service-against-op.js';

/**
 * Conformance (issue 4), the payment API after a good token: exactly one transfer, over mTLS,
 * with the access token and the payment id as Idempotency-Key, retried with the same key.
 */

const h = useConformanceHarness();
const { advanceTo } = h;

async function approveAndPoll(): Promise<StartedPayment> {
  const p = await h.svc.start();
  h.op.approve(p.authReqId);
  advanceTo((await h.svc.nextPollAt(p))!);
  return p;
}

/** Lets the submitter's backoff pass (it is scheduled on the same clock) until `n` calls were made. */
async function paymentCalls(p: StartedPayment, n: number) {
  await h.svc.drive(p, () => p.paymentCalls().length >= n, 5000);
  return p.paymentCalls();
}

test('matching authorization: one payment call with Idempotency-Key, Bearer token, mTLS client certificate and the payment', async () => {
  const p = await approveAndPoll();
  expect(await h.svc.settle(p)).toMatchObject({ status: 'succeeded', failure_code: null });
  const calls = p.paymentCalls();
  expect(calls).toHaveLength(1);
  const call = calls[0]!;
  expect(call.method).toBe('POST');
  expect(call.path).toBe('/api/payments');
  expect(call.headers['idempotency-key']).toBe(p.id);
  expect(call.headers.authorization).toMatch(/^Bearer at_[0-9a-f]{32}$/);
  expect(call.clientCert).toMatchObject({ subject: 'CN=client', authorized: true });
  expect(call.json).toEqual({
    amount: '12.90',
    currency: 'EUR',
    creditor: { name: 'Demo Tea Shop', iban: 'DE89370400440532013000' },
    remittance_information: `Order ${p.id}`,
    end_to_end_id: p.id,
  });
  expect(h.op.payments.size).toBe(1);
  // the access token is kept only until used
  expect((await h.svc.service.store.get(p.id))?.sealedAccessToken).toBeNull();
});

test.each([
  ['500', { status: 500, text: 'oops' }],
  ['503 with Retry-After', { status: 503, headers: { 'retry-after': '2' } }],
  ['409 (key in flight at the bank)', { status: 409, json: { reason: 'in_progress' } }],
  ['a connection reset', { status: 500, hangUp: true }],
] as [string, Reply][])(
  '%s, then 201: retried with the same Idempotency-Key and token, exactly one transfer',
  async (_name, first) => {
    h.op.script('payments', first);
    const p = await approveAndPoll();
    const calls = await paymentCalls(p, 2);
    expect(await h.svc.settle(p)).toMatchObject({ status: 'succeeded' });
    expect(calls).toHaveLength(2);
    expect(calls[1]!.headers['idempotency-key']).toBe(p.id);
    expect(calls[1]!.headers.authorization).toBe(calls[0]!.headers.authorization);
    expect(calls[1]!.rawBody).toBe(calls[0]!.rawBody);
    expect([...h.op.payments.keys()]).toEqual([p.id]);
    if (first.headers?.['retry-after']) expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(2000);
  },
);

test.each([
  ['422', { status: 422, json: { reason: 'insufficient_funds' } }],
  ['400', { status: 400, json: { error: 'invalid_request' } }],
  ['403', { status: 403, json: { error: 'insufficient_scope' } }],
  ['201 rejected', { status: 201, json: { id: 'bp_1', status: 'rejected', reason: 'limit' } }],
] as [string, Reply][])('%s → failed/bank_rejected after exactly one call', async (_name, reply) => {
  h.op.script('payments', reply);
  const p = await approveAndPoll();
  expect(await h.svc.settle(p)).toMatchObject({ status: 'failed', failure_code: 'bank_rejected' });
  await h.svc.idle();
  expect(p.paymentCalls()).toHaveLength(1);
  expect(p.polls()).toHaveLength(1);
});
