import { api, waitFor, waitForStatus } from '../support/api.js';
import { startTestService, type SandboxService } from '../support/service.js';

/**
 * Issue 14, end to end on the Open Banking UK profile against the sandbox bank: the service
 * creates a domestic-payment consent, names it as openbanking_intent_id in a signed CIBA request,
 * the customer approves on the phone (which shows the consent's creditor and amount), the worker
 * creates the domestic payment with the CIBA token and polls it from Pending to
 * AcceptedSettlementCompleted before reporting `succeeded`.
 */
describe('uk-openbanking profile against the sandbox bank', () => {
  let sys: SandboxService;
  beforeAll(async () => {
    sys = await startTestService({ bank: { sandbox: { openBanking: true, obSettleDelayMs: 1500 } } });
  });
  afterAll(async () => {
    await sys.close();
  });

  test('when the customer approves, then the payment is Pending at the bank, then settles, then succeeds once', async () => {
    const res = await api(sys.url, 'POST', '/checkout', {
      body: { items: [{ sku: 'tea-01', quantity: 1 }], login_hint: 'user' },
    });
    expect(res.status).toBe(202);
    const payment = res.json;
    const pending = await waitFor(async () =>
      (await sys.bank.pending('user')).find((p) => p.bindingMessage === payment.binding_message),
    );
    expect(pending).toMatchObject({ amount: '12.90', currency: 'EUR', creditorName: 'Demo Tea Shop' });
    const stored = await sys.service.store.get(payment.id);
    expect(stored?.bankConsentId).toMatch(/^sdp-/);

    await sys.bank.approve(pending.id);
    const processing = await waitForStatus(sys.url, payment.id, payment.client_secret, [
      'processing',
      'succeeded',
      'failed',
    ]);
    // the bank holds it as Pending for 1.5 s: it must not be reported succeeded before it settles
    expect(processing.status).toBe('processing');
    const done = await waitForStatus(sys.url, payment.id, payment.client_secret, ['succeeded', 'failed'], 20_000);
    expect(done).toMatchObject({ status: 'succeeded', failure_code: null });
    const transfers = (await sys.bank.transfers()).filter((t) => t.endToEndId === payment.id);
    expect(transfers).toHaveLength(1);
    expect(transfers[0]).toMatchObject({ amount: '12.90', currency: 'EUR', creditorIban: '40400411290112' });
    expect((await sys.service.store.get(payment.id))?.bankPaymentId).toBe(transfers[0]?.bankPaymentId);
  });

  test('when the customer denies, then the payment fails as access_denied and no payment reaches the bank', async () => {
    const res = await api(sys.url, 'POST', '/checkout', {
      body: { items: [{ sku: 'tea-01', quantity: 1 }], login_hint: 'user' },
    });
    const payment = res.json;
    const pending = await waitFor(async () =>
      (await sys.bank.pending('user')).find((p) => p.bindingMessage === payment.binding_message),
    );
    await sys.bank.deny(pending.id);
    const done = await waitForStatus(sys.url, payment.id, payment.client_secret, ['succeeded', 'failed']);
    expect(done).toMatchObject({ status: 'failed', failure_code: 'access_denied' });
    expect((await sys.bank.transfers()).filter((t) => t.endToEndId === payment.id)).toHaveLength(0);
  });
});
