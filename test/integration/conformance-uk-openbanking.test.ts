import { type StartedPayment, useConformanceHarness } from '../support/service-against-op.js';
import { createScriptedObBank, obError, OB_BASE_PATH } from '../support/scripted-ob-bank.js';
import { type RecordedRequest, type ScriptedOp } from '../support/scripted-op.js';
import { testCertificates } from '../support/system.js';
import { waitFor } from '../support/api.js';
import { PAYMENT_FIELD } from '../../src/store/payment-hash.js';

/**
 * Conformance of the Open Banking UK profile (issue 14; Read/Write API v3.1.10, domestic payments
 * with decoupled CIBA authorisation) against a scripted bank over real mTLS: the consent, the
 * intent-bound CIBA request, the payment with the identical Initiation, status polling, and the
 * answers that must end a payment (or must not).
 */

const ob = createScriptedObBank(testCertificates());
const h = useConformanceHarness({ openBanking: ob.handle });
const { clock } = h;
afterEach(() => {
  ob.reset();
});

const obRequests = (method: string, path: RegExp): RecordedRequest[] =>
  h.op.requestsTo('open-banking').filter((r) => r.method === method && path.test(r.path.slice(OB_BASE_PATH.length)));
const consentPosts = () => obRequests('POST', /^\/domestic-payment-consents$/);
const paymentPosts = (p: StartedPayment) =>
  obRequests('POST', /^\/domestic-payments$/).filter((r) => r.headers['x-idempotency-key'] === p.id);
const statusGets = () => obRequests('GET', /^\/domestic-payments\/[^/]+$/);

const statusIs =
  (p: StartedPayment, ...statuses: string[]) =>
  async () =>
    statuses.includes((await h.svc.status(p)).status);

async function approveAndSettle(p: StartedPayment, options: Parameters<ScriptedOp['approve']>[1] = {}) {
  h.op.approve(p.authReqId, options);
  await h.svc.drive(p, statusIs(p, 'succeeded', 'failed', 'canceled'));
  return h.svc.status(p);
}

test('consent, intent-bound CIBA request, payment with the identical Initiation, Pending polled until AcceptedSettlementCompleted', async () => {
  ob.paymentStatuses('Pending', 'Pending', 'AcceptedSettlementCompleted');
  const p = await h.svc.start();

  // 1. client-credentials token (scope payments) over mTLS, then the consent
  const [cc] = h.op.requestsTo('token').filter((r) => r.form.grant_type === 'client_credentials');
  expect(cc).toMatchObject({ viaMtlsAlias: true, form: { scope: 'payments' }, clientCert: { authorized: true } });
  const [consent] = consentPosts();
  expect(consent?.headers).toMatchObject({
    authorization: expect.stringMatching(/^Bearer cc_/),
    'x-idempotency-key': `${p.id}-consent`,
    'x-fapi-financial-id': '0015800001041RHAAY',
    'x-fapi-interaction-id': expect.stringMatching(/^[0-9a-f-]{36}$/),
    'x-jws-signature': expect.stringMatching(/^[\w-]+\.\.[\w-]+$/),
  });
  const initiation = {
    InstructionIdentification: p.id,
    EndToEndIdentification: p.id,
    InstructedAmount: { Amount: '12.90', Currency: 'EUR' },
    CreditorAccount: {
      SchemeName: 'UK.OBIE.SortCodeAccountNumber',
      Identification: '40400411290112',
      Name: 'Demo Tea Shop',
    },
    RemittanceInformation: { Reference: p.id, Unstructured: `Order ${p.id}` },
  };
  expect(consent?.json).toEqual({ Data: { Initiation: initiation }, Risk: { PaymentContextCode: 'EcommerceGoods' } });
  const [consentId] = [...ob.consents.keys()];

  // 2. the signed CIBA request names the consent as essential openbanking_intent_id, without RAR
  const requestObject = p.backchannel.requestObject?.payload;
  const intent = { openbanking_intent_id: { value: consentId, essential: true } };
  expect(requestObject?.claims).toEqual({ id_token: intent, userinfo: intent });
  expect(requestObject?.authorization_details).toBeUndefined();
  expect(requestObject?.scope).toBe('openid payments');
  expect((await h.svc.service.store.get(p.id))?.bankConsentId).toBe(consentId);

  // 3. approval → token → POST /domestic-payments with the CIBA token, ConsentId and identical Initiation
  h.op.approve(p.authReqId);
  await h.svc.drive(p, () => paymentPosts(p).length > 0);
  const [post] = paymentPosts(p);
  expect(post?.headers.authorization).toMatch(/^Bearer at_/);
  expect(post?.headers['x-jws-signature']).toMatch(/^[\w-]+\.\.[\w-]+$/);
  expect(post?.json).toEqual({
    Data: { ConsentId: consentId, Initiation: initiation },
    Risk: { PaymentContextCode: 'EcommerceGoods' },
  });

  // 4. Pending is not success: still processing until the bank says AcceptedSettlementCompleted
  expect((await h.svc.status(p)).status).toBe('processing');
  await h.svc.drive(p, statusIs(p, 'succeeded', 'failed'));
  expect(await h.svc.status(p)).toMatchObject({ status: 'succeeded', failure_code: null });
  expect(statusGets().length).toBe(2);
  expect(statusGets().every((r) => r.headers.authorization?.startsWith('Bearer cc_'))).toBe(true);
  expect(paymentPosts(p)).toHaveLength(1);
  expect((await h.svc.service.store.get(p.id))?.bankPaymentId).toBe([...ob.payments.keys()][0]);
});

test.each([
  ['400 UK.OBIE.Field.Invalid', 422, 'bank_request_rejected', obError(400, 'UK.OBIE.Field.Invalid')],
  ['403 (our registration)', 502, 'bank_configuration_error', obError(403, 'UK.OBIE.Unauthorized')],
  ['503', 503, 'bank_unavailable', { status: 503, headers: { 'retry-after': '7' } }],
] as const)(
  'consent refused (%s): the checkout answers %i %s and no CIBA request is sent',
  async (_name, status, code, reply) => {
    h.op.script('open-banking', reply);
    const res = await h.svc.checkout();
    expect([res.status, res.json.code]).toEqual([status, code]);
    expect(consentPosts()).toHaveLength(1);
    expect(h.op.requestsTo('backchannel')).toHaveLength(0);
  },
);

test('consent expired before approval: failed/expired, no payment at the bank', async () => {
  const p = await h.svc.start();
  h.op.expire(p.authReqId);
  await h.svc.drive(p, statusIs(p, 'failed', 'succeeded'));
  expect(await h.svc.status(p)).toMatchObject({ status: 'failed', failure_code: 'expired' });
  expect(obRequests('POST', /^\/domestic-payments$/)).toHaveLength(0);
});

test('consent rejected by the customer: failed/access_denied, no payment at the bank', async () => {
  const p = await h.svc.start();
  h.op.deny(p.authReqId);
  await h.svc.drive(p, statusIs(p, 'failed', 'succeeded'));
  expect(await h.svc.status(p)).toMatchObject({ status: 'failed', failure_code: 'access_denied' });
  expect(obRequests('POST', /^\/domestic-payments$/)).toHaveLength(0);
});

test.each([
  ['at once', ['Rejected']],
  ['after Pending', ['Pending', 'Rejected']],
  ['after AcceptedSettlementInProcess', ['AcceptedSettlementInProcess', 'Rejected']],
])('payment Rejected %s: failed/bank_rejected', async (_name, statuses) => {
  ob.paymentStatuses(...statuses);
  const p = await h.svc.start();
  expect(await approveAndSettle(p)).toMatchObject({ status: 'failed', failure_code: 'bank_rejected' });
  expect(paymentPosts(p)).toHaveLength(1);
  expect(statusGets()).toHaveLength(statuses.length - 1);
});

test.each(['AcceptedCreditSettlementCompleted', 'AcceptedWithoutPosting'])(
  '%s at once: succeeded without a status poll',
  async (status) => {
    ob.paymentStatuses(status);
    const p = await h.svc.start();
    expect(await approveAndSettle(p)).toMatchObject({ status: 'succeeded' });
    expect(statusGets()).toHaveLength(0);
  },
);

test.each([
  ["another consent's intent id", { openbanking_intent_id: 'cons_someone_else' }],
  ['no intent id', { openbanking_intent_id: undefined }],
])('ID token with %s: failed/invalid_id_token and the payment API is not called', async (_name, claims) => {
  const p = await h.svc.start();
  expect(await approveAndSettle(p, { idToken: { claims } })).toMatchObject({
    status: 'failed',
    failure_code: 'invalid_id_token',
  });
  expect(obRequests('POST', /^\/domestic-payments$/)).toHaveLength(0);
});

test('still Pending when the customer token expires: followed by its status with the client token, never reconciled', async () => {
  ob.paymentStatuses('Pending', 'AcceptedSettlementCompleted');
  const p = await h.svc.start();
  h.op.approve(p.authReqId);
  await h.svc.drive(p, () => paymentPosts(p).length === 1);
  const submit = `submit:${p.id}`;
  const paymentKey = h.svc.service.keys.payment(p.id);
  // the Pending answer is recorded (the bank's payment id kept) and the status asked again later
  await waitFor(async () => (await h.svc.service.redis.hget(paymentKey, PAYMENT_FIELD.bankPaymentId)) !== null);
  await waitFor(async () => (await h.svc.service.redis.zscore(h.svc.service.keys.dueOf(submit).key, submit)) !== null);
  clock.advance(301_000); // past the CIBA access token's 300 s
  await h.svc.drive(p, statusIs(p, 'succeeded', 'failed', 'canceled'));
  expect(await h.svc.status(p)).toMatchObject({ status: 'succeeded' });
  expect(statusGets()).toHaveLength(1);
  expect(await h.svc.service.redis.hget(paymentKey, PAYMENT_FIELD.reconcileSince)).toBeNull();
});

test('the answer to POST /domestic-payments is lost: resent with the same x-idempotency-key, one payment at the bank', async () => {
  ob.paymentStatuses('AcceptedSettlementCompleted');
  const p = await h.svc.start();
  // the bank creates the payment, then the connection drops before the answer arrives
  h.op.script('open-banking', async (req) => ({ ...(await ob.handle(req, h.op)), hangUp: true }));
  expect(await approveAndSettle(p)).toMatchObject({ status: 'succeeded' });
  const posts = paymentPosts(p);
  expect(posts).toHaveLength(2);
  expect(posts[1]?.rawBody).toBe(posts[0]?.rawBody);
  expect(ob.payments.size).toBe(1);
});

test.each([
  ['400 UK.OBIE.Resource.InvalidConsentStatus', 'failed', obError(400, 'UK.OBIE.Resource.InvalidConsentStatus')],
  ['403 UK.OBIE.Resource.ConsentMismatch', 'failed', obError(403, 'UK.OBIE.Resource.ConsentMismatch')],
  ['500 UK.OBIE.UnexpectedError, then created', 'succeeded', obError(500, 'UK.OBIE.UnexpectedError')],
])('payment POST answers %s: %s', async (_name, outcome, reply) => {
  ob.paymentStatuses('AcceptedSettlementCompleted');
  const p = await h.svc.start();
  h.op.script('open-banking', reply);
  const done = await approveAndSettle(p);
  expect(done.status).toBe(outcome);
  if (outcome === 'failed') expect(done.failure_code).toBe('bank_rejected');
  expect(ob.payments.size).toBe(outcome === 'failed' ? 0 : 1);
});
