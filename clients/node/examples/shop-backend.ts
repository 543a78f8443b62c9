/**
 * An example shop backend (README "Server-side checkout"): the order is made on the shop's server,
 * the payment is created for it with the shop key, the storefront only follows it with the
 * `client_secret`, and the signed webhook closes the order, checked against what was ordered.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { CheckoutRequest, ShopClient, WebhookVerifier } from '../src/index.js';

export interface Order {
  id: string;
  items: CheckoutRequest['items'];
  paymentId: string;
  amount: number;
  status: 'awaiting_payment' | 'paid' | 'payment_failed';
}

export function createShopBackend(deps: { payments: ShopClient; webhooks: WebhookVerifier }) {
  const orders = new Map<string, Order>();

  async function placeOrder(items: CheckoutRequest['items'], loginHint: string) {
    const orderId = `ord_${randomUUID()}`;
    // The order id is the idempotency key: a retried request cannot pay the order twice.
    const payment = await deps.payments.createPayment(
      { items, login_hint: loginHint, metadata: { order_id: orderId } },
      { idempotencyKey: orderId },
    );
    orders.set(orderId, {
      id: orderId,
      items,
      paymentId: payment.id,
      amount: payment.amount,
      status: 'awaiting_payment',
    });
    return { order_id: orderId, client_secret: payment.client_secret, binding_message: payment.binding_message };
  }

  /** Closes the order only for its own payment, with the line items and amount it was created for. */
  function closeOrder(body: string, headers: IncomingMessage['headers']): void {
    const { type, data } = deps.webhooks.verify(body, headers); // throws on a bad signature
    const order = orders.get(data.metadata.order_id ?? '');
    if (!order || order.status !== 'awaiting_payment' || data.id !== order.paymentId) return;
    const sameItems =
      JSON.stringify(data.items.map((i) => [i.sku, i.quantity])) ===
      JSON.stringify(order.items.map((i) => [i.sku, i.quantity]));
    if (type === 'payment.succeeded' && sameItems && data.amount === order.amount) order.status = 'paid';
    if (type === 'payment.failed' || type === 'payment.canceled') order.status = 'payment_failed';
  }

  /** Catches webhooks that never arrived: every succeeded payment since `since` (unix seconds). */
  async function reconcile(since: number): Promise<number> {
    let closed = 0;
    for await (const p of deps.payments.allPayments({ status: 'succeeded', created: { gte: since } })) {
      const order = orders.get(p.metadata.order_id ?? '');
      if (order?.status === 'awaiting_payment' && order.paymentId === p.id && p.amount === order.amount) {
        order.status = 'paid';
        closed += 1;
      }
    }
    return closed;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const send = (status: number, json?: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(json === undefined ? '' : JSON.stringify(json));
    };
    try {
      if (req.method === 'POST' && req.url === '/orders') {
        const { items, login_hint } = JSON.parse(body) as { items: Order['items']; login_hint: string };
        send(201, await placeOrder(items, login_hint));
      } else if (req.method === 'POST' && req.url === '/webhooks') {
        closeOrder(body, req.headers);
        send(204);
      } else send(404, { error: 'not found' });
    } catch (err) {
      send(400, { error: err instanceof Error ? err.name : 'error' });
    }
  }

  return { handle, reconcile, orders };
}
