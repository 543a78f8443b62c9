import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Agent } from 'undici';
import { createBankClient } from '../../src/bank/payment-client.js';
import type { BankClient, BankPaymentRequest } from '../../src/bank/types.js';
import { createBankAgent } from '../../src/ciba/bank-agent.js';
import type { Config } from '../../src/config.js';
import { ensureDevCertificates, type DevCertificates } from '../../src/sandbox/certs.js';
import { replies, startScriptedOp, type Reply, type ScriptedOp } from '../support/scripted-op.js';

let certs: DevCertificates;
let op: ScriptedOp;
const agents: Agent[] = [];

beforeAll(async () => {
  certs = ensureDevCertificates(mkdtempSync(join(tmpdir(), 'bank-client-certs-')));
  op = await startScriptedOp({ certs });
});
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.close()));
  op.reset();
});
afterAll(() => op.close());

function makeClient(bank: Partial<Config['bank']> = {}): BankClient {
  const config = op.configFor(bank);
  const agent = createBankAgent(config.bank);
  agents.push(agent);
  return createBankClient({ config, agent });
}

function paymentRequest(overrides: Partial<BankPaymentRequest> = {}): BankPaymentRequest {
  return {
    accessToken: op.createAccessToken(),
    idempotencyKey: `pay_${Math.random().toString(36).slice(2)}`,
    amount: '19.90',
    currency: 'EUR',
    creditor: { name: 'Demo Tea Shop', iban: 'DE89370400440532013000' },
    remittanceInformation: 'Order 42',
    endToEndId: 'e2e-42',
    requestId: 'req-1',
    ...overrides,
  };
}

describe('bank payment client', () => {
  test('when the bank accepts with 201, then accepted and the call carried token, key and body', async () => {
    const request = paymentRequest();
    const outcome = await makeClient().createPayment(request);
    expect(outcome).toMatchObject({ kind: 'accepted', bankPaymentId: expect.stringMatching(/^bp_/) as unknown });
    const call = op.requestsTo('payments')[0]!;
    expect(call.clientCert).toMatchObject({ subject: 'CN=client', authorized: true });
    expect(call.headers).toMatchObject({
      authorization: `Bearer ${request.accessToken}`,
      'idempotency-key': request.idempotencyKey,
      'x-request-id': 'req-1',
    });
    expect(call.json).toEqual({
      amount: '19.90',
      currency: 'EUR',
      creditor: { name: 'Demo Tea Shop', iban: 'DE89370400440532013000' },
      remittance_information: 'Order 42',
      end_to_end_id: 'e2e-42',
    });
  });

  test('when the same key is sent twice, then the bank replays its answer and holds one payment', async () => {
    const client = makeClient();
    const request = paymentRequest();
    const first = await client.createPayment(request);
    expect(await client.createPayment(request)).toEqual(first);
    expect(op.payments.size).toBe(1);
  });

  test('when the client presents its certificate from PKCS#12, then the bound token is accepted', async () => {
    const client = makeClient({
      clientCertFile: undefined,
      clientKeyFile: undefined,
      clientPfxFile: certs.clientPfx,
      clientPfxPassphrase: certs.clientPfxPassphrase,
    });
    expect(await client.createPayment(paymentRequest())).toMatchObject({ kind: 'accepted' });
  });

  test('when another certificate presents the token, then the bank refuses it as a definite no', async () => {
    const client = makeClient({ clientCertFile: certs.otherClientCert, clientKeyFile: certs.otherClientKey });
    expect(await client.createPayment(paymentRequest())).toEqual({ kind: 'refused', reason: 'invalid_token' });
  });

  test.each<[string, Reply, object]>([
    ['200 accepted', replies.json(200, { id: 'b1', status: 'accepted' }), { kind: 'accepted', bankPaymentId: 'b1' }],
    [
      'rejected with reason',
      replies.json(201, { status: 'rejected', reason: 'insufficient_funds' }),
      { kind: 'rejected', reason: 'insufficient_funds' },
    ],
    [
      'rejected without reason',
      replies.json(201, { id: 'b2', status: 'rejected' }),
      { kind: 'rejected', reason: 'rejected' },
    ],
    ['400 with a reason', replies.json(400, { reason: 'invalid_iban' }), { kind: 'refused', reason: 'invalid_iban' }],
    ['403 without a body', { status: 403 }, { kind: 'refused', reason: 'http_403' }],
    [
      '422 with an OAuth error',
      replies.json(422, { error: 'invalid_request' }),
      { kind: 'refused', reason: 'invalid_request' },
    ],
    [
      '422 saying the payment is rejected',
      replies.json(422, { id: 'b3', status: 'rejected', reason: 'amount_mismatch' }),
      { kind: 'rejected', reason: 'amount_mismatch' },
    ],
    ['408', { status: 408 }, { kind: 'retry', reason: 'http_408' }],
    [
      '409 (same key in flight)',
      replies.json(409, { reason: 'in_flight' }, { 'retry-after': '1' }),
      { kind: 'retry', reason: 'http_409', retryAfterMs: 1000 },
    ],
    ['425', { status: 425 }, { kind: 'retry', reason: 'http_425' }],
    [
      '429 with Retry-After',
      { status: 429, headers: { 'retry-after': '4' } },
      { kind: 'retry', reason: 'http_429', retryAfterMs: 4000 },
    ],
    ['500', { status: 500, text: 'boom' }, { kind: 'retry', reason: 'http_500' }],
    [
      '503 with Retry-After',
      { status: 503, headers: { 'retry-after': '30' } },
      { kind: 'retry', reason: 'http_503', retryAfterMs: 30_000 },
    ],
    [
      '201 with malformed JSON',
      replies.text(201, '{"id":', 'application/json'),
      { kind: 'retry', reason: 'malformed_answer' },
    ],
    [
      '201 as text/html',
      replies.text(201, '{"id":"b","status":"accepted"}', 'text/html'),
      { kind: 'retry', reason: 'malformed_answer' },
    ],
    [
      '201 with an unknown status',
      replies.json(201, { id: 'b', status: 'pending' }),
      { kind: 'retry', reason: 'malformed_answer' },
    ],
    [
      '201 accepted without id',
      replies.json(201, { status: 'accepted' }),
      { kind: 'retry', reason: 'malformed_answer' },
    ],
  ])('when the bank answers %s, then the mapped outcome', async (_name, reply, outcome) => {
    op.script('payments', reply);
    expect(await makeClient().createPayment(paymentRequest())).toEqual(outcome);
  });

  test('when the connection drops, then retry', async () => {
    op.script('payments', { status: 201, hangUp: true });
    const outcome = await makeClient().createPayment(paymentRequest());
    expect(outcome.kind === 'retry' && outcome.reason.startsWith('network')).toBe(true);
  });

  // undici checks headers timeouts on a ~1 s tick, so the slow answer is 3 s against a 200 ms timeout
  test('when the bank does not answer in time, then retry, and the retry with the same key is accepted once', async () => {
    const client = makeClient({ timeoutMs: 200 });
    const request = paymentRequest();
    op.script('payments', { status: 503, delayMs: 3000 });
    const outcome = await client.createPayment(request);
    expect(outcome.kind === 'retry' && outcome.reason.startsWith('network')).toBe(true);
    expect(await client.createPayment(request)).toMatchObject({ kind: 'accepted' });
    expect(op.payments.size).toBe(1);
  });
});

describe('bank reconciliation lookup (GET /payments?end_to_end_id=, mTLS, no bearer)', () => {
  test('when the payment was booked, then the lookup lists it; the request carries the certificate and no token', async () => {
    const client = makeClient();
    const booked = await client.createPayment(paymentRequest({ endToEndId: 'pay_lookup1' }));
    const found = await client.findPayment('pay_lookup1');
    expect(booked.kind).toBe('accepted');
    expect(found).toEqual({
      kind: 'found',
      payments: [
        {
          bankPaymentId: (booked as { bankPaymentId: string }).bankPaymentId,
          status: 'accepted',
          endToEndId: 'pay_lookup1',
        },
      ],
    });
    const call = op.requestsTo('lookup')[0]!;
    expect(call.method).toBe('GET');
    expect(call.query).toEqual({ end_to_end_id: 'pay_lookup1' });
    expect(call.headers.authorization).toBeUndefined();
    expect(call.clientCert).toMatchObject({ subject: 'CN=client', authorized: true });
  });

  test('when nothing was booked, then an empty list', async () => {
    expect(await makeClient().findPayment('pay_nothing')).toEqual({ kind: 'found', payments: [] });
  });

  test.each<[string, Reply, object]>([
    [
      '503 with Retry-After',
      { status: 503, headers: { 'retry-after': '7' } },
      { kind: 'unavailable', reason: 'http_503', retryAfterMs: 7000 },
    ],
    ['404', replies.json(404, { error: 'not_found' }), { kind: 'unavailable', reason: 'http_404' }],
    ['200 without a list', replies.json(200, { data: [] }), { kind: 'unavailable', reason: 'malformed_answer' }],
    ['200 as text', replies.text(200, '{"payments":[]}'), { kind: 'unavailable', reason: 'malformed_answer' }],
  ])('when the lookup answers %s, then the outcome stays unknown', async (_name, reply, outcome) => {
    op.script('lookup', reply);
    expect(await makeClient().findPayment('pay_x')).toEqual(outcome);
  });

  test('when the connection drops, then unavailable', async () => {
    op.script('lookup', { status: 200, hangUp: true });
    const outcome = await makeClient().findPayment('pay_x');
    expect(outcome.kind === 'unavailable' && outcome.reason.startsWith('network')).toBe(true);
  });
});
