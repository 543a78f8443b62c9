import { api, waitFor, waitForStatus } from '../support/api.js';
import { startTestService, type SandboxService } from '../support/service.js';
import { PAYMENT_FIELD } from '../../src/store/payment-hash.js';

/**
 * The first whole path of the product (issue 3): storefront checkout → CIBA at the sandbox bank
 * over mTLS → customer decides on the phone → worker polls the token, validates the ID token,
 * pays over mTLS with Idempotency-Key → payment status, all on real Redis.
 */
describe('checkout to bank payment, poll mode', () => {
  let sys: SandboxService;
  beforeAll(async () => {
    sys = await startTestService({ bank: { sandbox: { deliveryMode: 'poll', interval: 1 } } });
  });
  afterAll(async () => {
    await sys.close();
  });

  async function checkout(loginHint = 'user') {
    const res = await api(sys.url, 'POST', '/checkout', {
      body: {
        items: [
          { sku: 'tea-01', quantity: 2 },
          { sku: 'cup-01', quantity: 1 },
        ],
        login_hint: loginHint,
      },
    });
    return res;
  }

  test('when the customer approves, then the payment succeeds and the bank records exactly one transfer', async () => {
    const res = await checkout();
    expect(res.status).toBe(202);
    const payment = res.json;
    expect(res.headers.location).toBe(`/payments/${payment.id}`);
    expect(payment).toMatchObject({
      status: 'pending_authorization',
      amount: 2 * 1290 + 750,
      currency: 'eur',
      failure_code: null,
    });
    expect(payment.binding_message).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{2}$/);
    expect(payment.client_secret).toMatch(new RegExp(`^${payment.id}_secret_`));
    expect(JSON.stringify(payment)).not.toMatch(/auth_req_id|access_token/);

    // The phone shows the request with the same binding message and amount, and a console URL line.
    const pending = await waitFor(async () =>
      (await sys.bank.pending('user')).find((p) => p.bindingMessage === payment.binding_message),
    );
    expect(pending.amount).toBe('33.30');
    expect(sys.bankLines.some((l) => l.includes(payment.binding_message) && l.includes('http://'))).toBe(true);

    const before = await api(sys.url, 'GET', `/payments/${payment.id}`, {
      headers: { authorization: `Bearer ${payment.client_secret}` },
    });
    expect(before.json.status).toBe('pending_authorization');

    await sys.bank.approve(pending.id);
    const done = await waitForStatus(sys.url, payment.id, payment.client_secret, ['succeeded', 'failed']);
    expect(done.status).toBe('succeeded');

    const transfers = (await sys.bank.transfers()).filter((t) => t.idempotencyKey === payment.id);
    expect(transfers).toHaveLength(1);
    expect(transfers[0]).toMatchObject({ amount: '33.30', currency: 'EUR', endToEndId: payment.id });
    // The access token is gone once used.
    const stored = await sys.service.store.get(payment.id);
    expect(stored?.sealedAccessToken).toBeNull();
  });

  test('when the customer denies, then the payment fails with access_denied and no money moves', async () => {
    const { json: payment } = await checkout();
    const pending = await waitFor(async () =>
      (await sys.bank.pending('user')).find((p) => p.bindingMessage === payment.binding_message),
    );
    await sys.bank.deny(pending.id);
    const done = await waitForStatus(sys.url, payment.id, payment.client_secret, ['succeeded', 'failed']);
    expect(done).toMatchObject({ status: 'failed', failure_code: 'access_denied' });
    expect((await sys.bank.transfers()).filter((t) => t.idempotencyKey === payment.id)).toHaveLength(0);
  });

  test('when the bank does not know the customer, then checkout answers 422 unknown_bank_user and stores nothing', async () => {
    const res = await checkout('nobody-at-this-bank');
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.json).toMatchObject({ code: 'unknown_bank_user', status: 422 });
  });

  test('when the payment is fetched without its client secret, then it is 404 like an unknown id', async () => {
    const { json: payment } = await checkout();
    const none = await api(sys.url, 'GET', `/payments/${payment.id}`);
    const wrong = await api(sys.url, 'GET', `/payments/${payment.id}`, {
      headers: { authorization: 'Bearer pay_x_secret_y' },
    });
    const unknown = await api(sys.url, 'GET', `/payments/pay_aaaaaaaaaaaaaaaaaaaa`, {
      headers: { authorization: `Bearer ${payment.client_secret}` },
    });
    for (const r of [none, wrong, unknown]) {
      expect(r.status).toBe(404);
      expect(r.json.code).toBe('payment_not_found');
    }
    const asShop = await api(sys.url, 'GET', `/payments/${payment.id}`, {
      headers: { authorization: `Bearer ${sys.env.SHOP_API_KEY}` },
    });
    expect(asShop.status).toBe(200);
    // The shop key is a header-only credential: in a URL it would end up in proxy logs.
    const shopKeyInQuery = await api(sys.url, 'GET', `/payments/${payment.id}?client_secret=${sys.env.SHOP_API_KEY}`);
    expect(shopKeyInQuery.status).toBe(404);
    // So is the client secret, except on the event stream (EventSource cannot send headers): issue 11.1.
    const viaQuery = await api(
      sys.url,
      'GET',
      `/payments/${payment.id}?client_secret=${encodeURIComponent(payment.client_secret)}`,
    );
    expect(viaQuery.status).toBe(404);
  });

  test('the log of the whole run holds no token, secret or auth_req_id', async () => {
    const { json: payment } = await checkout();
    const pending = await waitFor(async () =>
      (await sys.bank.pending('user')).find((p) => p.bindingMessage === payment.binding_message),
    );
    await sys.bank.approve(pending.id);
    await waitForStatus(sys.url, payment.id, payment.client_secret, ['succeeded']);
    await api(
      sys.url,
      'GET',
      `/payments/${payment.id}/events?client_secret=${encodeURIComponent(payment.client_secret)}`,
    );
    const stored = await sys.service.redis.hget(sys.service.keys.payment(payment.id), PAYMENT_FIELD.authReqId);
    const log = sys.logs.join('\n');
    expect(log.length).toBeGreaterThan(0);
    expect(stored).toBeTruthy();
    expect(log).not.toContain(stored!);
    expect(log).not.toContain(payment.client_secret);
    expect(log).not.toContain(sys.env.SHOP_API_KEY);
  });
});
