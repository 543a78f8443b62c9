import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { Webhook } from 'standardwebhooks';
import { generateTypes, TYPES_FILE } from '../../clients/node/scripts/generate-types.mjs';
import { createShopBackend } from '../../clients/node/examples/shop-backend.js';
import { CibaCheckoutError, createShopClient, createWebhookVerifier } from '../../clients/node/src/index.js';
import { api, waitFor } from '../support/api.js';
import { startTestService, type SandboxService } from '../support/service.js';
import { newWebhookSecret } from '../support/webhook-receiver.js';

/**
 * The typed client (clients/node) and the example shop backend built on it, against the real
 * service and the sandbox bank: the order is paid by its own payment's signed webhook, a forged one
 * closes nothing, a missed webhook is caught by listing payments, and the checked-in types are
 * exactly what the live /openapi.json generates.
 */
describe('clients/node and the example shop backend', () => {
  const secret = newWebhookSecret();
  let sys: SandboxService;
  let server: Server;
  let backendUrl: string;
  let backend: ReturnType<typeof createShopBackend>;
  /** Webhooks for these payment ids are answered 500 before the backend sees them (a missed webhook). */
  const dropFor = new Set<string>();

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      void route(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    backendUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    sys = await startTestService({
      env: {
        WEBHOOK_URL: `${backendUrl}/webhooks`,
        WEBHOOK_SECRET: secret,
        WEBHOOK_ALLOW_PRIVATE: 'true',
        // A failed delivery is retried only an hour later: long enough to count as missed here.
        WEBHOOK_RETRY_SCHEDULE: '0,3600',
      },
    });
    const payments = createShopClient({ baseUrl: sys.url, shopKey: sys.env.SHOP_API_KEY! });
    backend = createShopBackend({ payments, webhooks: createWebhookVerifier(secret) });
  });
  afterAll(async () => {
    await sys.close();
    await new Promise((resolve) => server.close(resolve));
  });

  async function route(req: IncomingMessage, res: ServerResponse) {
    if (req.url === '/webhooks' && dropFor.size > 0) {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks).toString();
      if ([...dropFor].some((id) => body.includes(id))) {
        res.writeHead(500).end();
        return;
      }
      req = Object.assign(Readable.from([Buffer.from(body)]), {
        method: req.method,
        url: req.url,
        headers: req.headers,
      }) as any;
    }
    await backend.handle(req, res);
  }

  const placeOrder = async (items = [{ sku: 'tea-01', quantity: 2 }]) =>
    (await api(backendUrl, 'POST', '/orders', { body: { items, login_hint: 'user' } })).json as {
      order_id: string;
      client_secret: string;
      binding_message: string;
    };

  async function approve(bindingMessage: string) {
    const request = await waitFor(async () =>
      (await sys.bank.pending('user')).find((p) => p.bindingMessage === bindingMessage),
    );
    await sys.bank.approve(request.id);
  }

  test('when the customer approves, then the signed webhook closes the order, and the list finds its payment', async () => {
    const placed = await placeOrder();
    expect(placed.client_secret).toMatch(/^pay_[a-z2-7]{20}_secret_/);
    const order = backend.orders.get(placed.order_id)!;
    expect(order).toMatchObject({ status: 'awaiting_payment', amount: 2 * 1290 });

    // The storefront follows with the client secret alone.
    const asCustomer = await api(sys.url, 'GET', `/payments/${order.paymentId}`, {
      headers: { authorization: `Bearer ${placed.client_secret}` },
    });
    expect(asCustomer.json.metadata).toEqual({ order_id: placed.order_id });

    await approve(placed.binding_message);
    await waitFor(() => Promise.resolve(order.status === 'paid'), 20_000, 'the order to be paid');

    const client = createShopClient({ baseUrl: sys.url, shopKey: sys.env.SHOP_API_KEY! });
    const page = await client.listPayments({ metadata: { order_id: placed.order_id }, limit: 5 });
    expect(page).toMatchObject({ object: 'list', has_more: false, next_cursor: null });
    expect(page.data.map((p) => [p.id, p.status])).toEqual([[order.paymentId, 'succeeded']]);
    const since = Math.floor(Date.parse(page.data[0]!.created_at) / 1000);
    const succeeded = [];
    for await (const p of client.allPayments({ status: 'succeeded', created: { gte: since }, limit: 1 }))
      succeeded.push(p.id);
    expect(succeeded).toContain(order.paymentId);
  }, 40_000);

  test('when a webhook is forged or names the order for another payment, then the order stays open', async () => {
    const placed = await placeOrder([{ sku: 'cup-01', quantity: 1 }]);
    const order = backend.orders.get(placed.order_id)!;
    const data = {
      ...(await createShopClient({ baseUrl: sys.url, shopKey: sys.env.SHOP_API_KEY! }).getPayment(order.paymentId)),
      status: 'succeeded',
    };
    const send = (body: unknown, signWith: string) => {
      const raw = JSON.stringify(body);
      const headers = Object.fromEntries(
        Object.entries({
          'webhook-id': `msg_${Math.random().toString(36).slice(2)}`,
          'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
        }),
      );
      const signature = new Webhook(signWith).sign(headers['webhook-id']!, new Date(), raw);
      return api(backendUrl, 'POST', '/webhooks', { raw, headers: { ...headers, 'webhook-signature': signature } });
    };
    const event = { type: 'payment.succeeded', timestamp: new Date().toISOString(), data };
    expect((await send(event, newWebhookSecret())).status).toBe(400); // not our secret
    // Correctly signed, but another payment (say, the cheapest item) claiming this order.
    const other = { ...event, data: { ...data, id: 'pay_aaaaaaaaaaaaaaaaaaaa', amount: 1 } };
    expect((await send(other, secret)).status).toBe(204);
    expect(order.status).toBe('awaiting_payment');
  });

  test('when the webhook is missed, then listing succeeded payments closes the order', async () => {
    const placed = await placeOrder([{ sku: 'tea-01', quantity: 1 }]);
    const order = backend.orders.get(placed.order_id)!;
    dropFor.add(order.paymentId);
    await approve(placed.binding_message);
    const client = createShopClient({ baseUrl: sys.url, shopKey: sys.env.SHOP_API_KEY! });
    await waitFor(async () => (await client.getPayment(order.paymentId)).status === 'succeeded', 20_000);
    expect(order.status).toBe('awaiting_payment');
    expect(await backend.reconcile(Math.floor(Date.now() / 1000) - 600)).toBe(1);
    expect(order.status).toBe('paid');
  }, 40_000);

  test('when the shop key is wrong, then the client throws the problem with its code', async () => {
    const wrong = createShopClient({ baseUrl: sys.url, shopKey: 'sk_wrong' });
    const err = await wrong.listPayments().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CibaCheckoutError);
    expect(err).toMatchObject({ status: 401, problem: { code: 'unauthorized' } });
  });

  test('the checked-in types are what the live /openapi.json generates (npm run client:types)', async () => {
    const document = (await api(sys.url, 'GET', '/openapi.json')).json;
    const fresh = await generateTypes(document);
    const stale = fresh !== readFileSync(TYPES_FILE, 'utf8');
    // A changed route or schema needs `npm run client:types` and the regenerated file committed.
    expect({ stale, file: 'clients/node/src/api-types.ts', fix: 'npm run client:types' }).toMatchObject({
      stale: false,
    });
  });
});
