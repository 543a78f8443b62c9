import { api, waitFor, waitForStatus } from '../support/api.js';
import { startTestService, type SandboxService } from '../support/service.js';
import { newWebhookSecret, startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

/**
 * Issue 11.1, end to end against the sandbox bank: the shop backend's checkout with its key, whose
 * metadata comes back in the signed webhook with the priced line items; the storefront's client
 * secret in the query on the event stream alone.
 */
describe('the shop backend flow', () => {
  const secret = newWebhookSecret();
  let receiver: WebhookReceiver;
  let sys: SandboxService;
  beforeAll(async () => {
    receiver = await startWebhookReceiver({ secret });
    sys = await startTestService({
      env: {
        WEBHOOK_URL: `${receiver.origin}/hooks`,
        WEBHOOK_SECRET: secret,
        WEBHOOK_ALLOW_PRIVATE: 'true',
        CALLBACK_ALLOWED_ORIGINS: receiver.origin,
      },
    });
  });
  afterAll(async () => {
    await sys.close();
    await receiver.close();
  });

  test('when the shop checks out with its key and metadata, then the signed webhook carries the metadata, items and amount', async () => {
    const res = await api(sys.url, 'POST', '/checkout', {
      headers: { authorization: `Bearer ${sys.env.SHOP_API_KEY!}` },
      body: {
        items: [
          { sku: 'tea-01', quantity: 2 },
          { sku: 'tea-02', quantity: 1 },
        ],
        login_hint: 'user',
        metadata: { order_id: 'A-10042' },
        callback_url: `${receiver.origin}/orders/A-10042`,
      },
    });
    expect(res.status).toBe(202);
    const p = res.json;
    const pending = await waitFor(async () =>
      (await sys.bank.pending('user')).find((x) => x.bindingMessage === p.binding_message),
    );
    await sys.bank.approve(pending.id);
    await waitForStatus(sys.url, p.id, p.client_secret, ['succeeded']);
    await receiver.waitFor(
      (got) => got.filter((r) => r.payload?.type === 'payment.succeeded' && r.payload.data.id === p.id).length === 2,
    );
    const succeeded = receiver.forPayment(p.id).filter((r) => r.payload?.type === 'payment.succeeded');
    expect(succeeded.map((r) => r.path).sort()).toEqual(['/hooks', '/orders/A-10042']);
    for (const r of succeeded) {
      expect(r.verified).toBe(true);
      expect(r.payload?.data).toMatchObject({
        amount: 2 * 1290 + 990,
        currency: 'eur',
        items: [
          { sku: 'tea-01', quantity: 2, unit_amount: 1290 },
          { sku: 'tea-02', quantity: 1, unit_amount: 990 },
        ],
        metadata: { order_id: 'A-10042' },
      });
    }
  });

  test('when the client secret is in the query, then GET and cancel answer 404 while the event stream accepts it', async () => {
    const { json: p } = await api(sys.url, 'POST', '/checkout', {
      body: { items: [{ sku: 'tea-01', quantity: 1 }], login_hint: 'user' },
    });
    const query = `?client_secret=${encodeURIComponent(p.client_secret)}`;
    expect((await api(sys.url, 'GET', `/payments/${p.id}${query}`)).status).toBe(404);
    expect((await api(sys.url, 'POST', `/payments/${p.id}/cancel${query}`)).status).toBe(404);

    const controller = new AbortController();
    const res = await fetch(`${sys.url}/payments/${p.id}/events${query}`, { signal: controller.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    controller.abort();
    const auth = { authorization: `Bearer ${p.client_secret}` };
    expect((await api(sys.url, 'POST', `/payments/${p.id}/cancel`, { headers: auth })).json.status).toBe('canceled');
  });
});
