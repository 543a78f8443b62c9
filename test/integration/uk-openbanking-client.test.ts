import type { Agent } from 'undici';
import { createUkOpenBankingBank, type UkOpenBankingClient } from '../../src/bank/uk-openbanking/uk-bank-client.js';
import { createBankAgent } from '../../src/ciba/bank-agent.js';
import type { BankProfile } from '../../src/payments/bank-profile.js';
import { createScriptedObBank, obError, OB_BASE_PATH } from '../support/scripted-ob-bank.js';
import { startScriptedOp, type ScriptedOp } from '../support/scripted-op.js';
import { testCertificates } from '../support/system.js';

/**
 * The Open Banking UK client on its own against the scripted bank over mTLS: the client-credentials
 * token cache and the reconciliation lookup through the consent's and payment's GET endpoints.
 */

const ob = createScriptedObBank(testCertificates());
let op: ScriptedOp;
let agent: Agent;
let client: UkOpenBankingClient;
let profile: BankProfile;

beforeAll(async () => {
  op = await startScriptedOp({ certs: testCertificates(), openBanking: ob.handle });
  const config = op.configFor({ apiUrl: `${op.issuer}${OB_BASE_PATH}` });
  agent = createBankAgent(config.bank);
  ({ client, profile } = createUkOpenBankingBank({
    config: {
      ...config,
      merchantName: 'Demo Tea Shop',
      openBanking: {
        financialId: undefined,
        jwsSignature: true,
        jwsIssuer: 'test-org/test-ssa',
        trustAnchor: 'openbanking.org.uk',
        risk: { paymentContextCode: 'EcommerceGoods', merchantCategoryCode: undefined },
        creditor: { schemeName: 'UK.OBIE.SortCodeAccountNumber', identification: '40400411290112' },
      },
    },
    agent,
  }));
});
afterEach(() => {
  op.reset();
  ob.reset();
});
afterAll(async () => {
  await agent.close();
  await op.close();
});

const ccRequests = () => op.requestsTo('token').filter((r) => r.form.grant_type === 'client_credentials');

test('one client-credentials token serves several calls until it is refused, then a new one is fetched', async () => {
  const first = await profile.prepareAuthorization({ id: 'pay_a', amount: 1290, currency: 'eur' });
  await profile.prepareAuthorization({ id: 'pay_b', amount: 1290, currency: 'eur' });
  expect(ccRequests()).toHaveLength(1);
  expect(first).toMatchObject({ consentId: expect.stringMatching(/^cons_/), sendAuthorizationDetails: false });
  op.script('open-banking', obError(401, 'UK.OBIE.Unauthorized'));
  await expect(profile.prepareAuthorization({ id: 'pay_c', amount: 1290, currency: 'eur' })).rejects.toMatchObject({
    code: 'bank_client_error',
  });
  await profile.prepareAuthorization({ id: 'pay_d', amount: 1290, currency: 'eur' });
  expect(ccRequests()).toHaveLength(2);
});

test('lookup: a consent never used → nothing booked; a consumed consent without a payment id → unknown', async () => {
  const { consentId } = await profile.prepareAuthorization({ id: 'pay_e', amount: 500, currency: 'gbp' });
  const reference = { endToEndId: 'pay_e', consentId, bankPaymentId: null };
  expect(await client.lookupPayment(reference)).toEqual({ kind: 'found', payments: [] });
  ob.consents.get(consentId ?? '')!.status = 'Consumed';
  expect(await client.lookupPayment(reference)).toMatchObject({ kind: 'unavailable' });
});

test('lookup by payment id: settled → accepted, Pending → unknown, Rejected → rejected, 503 → unknown', async () => {
  const { consentId } = await profile.prepareAuthorization({ id: 'pay_f', amount: 500, currency: 'gbp' });
  ob.payments.set('dp_1', {
    paymentId: 'dp_1',
    consentId: consentId ?? '',
    idempotencyKey: 'pay_f',
    status: 'Pending',
    upcoming: ['Pending', 'AcceptedSettlementCompleted', 'Rejected'],
    initiation: undefined,
  });
  const reference = { endToEndId: 'pay_f', consentId, bankPaymentId: 'dp_1' };
  expect(await client.lookupPayment(reference)).toMatchObject({ kind: 'unavailable' });
  expect(await client.lookupPayment(reference)).toEqual({
    kind: 'found',
    payments: [{ bankPaymentId: 'dp_1', status: 'accepted', endToEndId: 'pay_f' }],
  });
  expect(await client.lookupPayment(reference)).toMatchObject({ kind: 'found', payments: [{ status: 'rejected' }] });
  op.script('open-banking', { status: 503, headers: { 'retry-after': '3' } });
  expect(await client.lookupPayment(reference)).toMatchObject({ kind: 'unavailable', retryAfterMs: 3000 });
});

test('status lookup refused (401, 404): never read as a rejection of the payment', async () => {
  op.script('open-banking', obError(401, 'UK.OBIE.Unauthorized'), obError(404, 'UK.OBIE.Resource.NotFound'));
  expect(await client.paymentStatus({ bankPaymentId: 'dp_x', paymentId: 'pay_x' })).toMatchObject({ kind: 'retry' });
  expect(await client.paymentStatus({ bankPaymentId: 'dp_x', paymentId: 'pay_x' })).toMatchObject({ kind: 'retry' });
});
