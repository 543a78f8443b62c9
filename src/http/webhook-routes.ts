import { Router } from 'express';
import type { DeliveryStore } from '../webhooks/delivery-store.js';
import { resendDelivery, toDeliveryView, type ResendDeps } from '../webhooks/resend.js';
import { requireShopKey } from './payment-access.js';
import { validationError } from './problem.js';
import { paymentIdSchema } from './schemas.js';
import { z } from 'zod';
import { documented, PAYMENT_ID, type OpenApiBuilder } from './openapi-builder.js';

export interface WebhookRouteDeps extends ResendDeps {
  deliveries: DeliveryStore;
  shopApiKey: string | undefined;
}

const listQuerySchema = z.object({ payment_id: paymentIdSchema });

/** The shop's view of webhook deliveries: attempts and results per payment, and resends. */
export function createWebhookRoutes(deps: WebhookRouteDeps): Router {
  const router = Router();

  router.get('/webhooks/deliveries', async (req, res) => {
    requireShopKey(req, deps.shopApiKey);
    const query = listQuerySchema.safeParse(req.query);
    if (!query.success) throw validationError(query.error, 'query');
    const records = await deps.deliveries.listForPayment(query.data.payment_id);
    res.setHeader('Cache-Control', 'no-store');
    res.json({ data: records.map(toDeliveryView) });
  });

  router.post('/webhooks/deliveries/:id/resend', async (req, res) => {
    requireShopKey(req, deps.shopApiKey);
    const record = await resendDelivery(deps, req.params.id);
    res.status(202).json(toDeliveryView(record));
  });

  return router;
}

/** The OpenAPI operations of the routes above, declared beside them so both change together. */
export function documentWebhookRoutes(b: OpenApiBuilder): void {
  const docs = webhookDeliveryDocs();
  documentListDeliveries(b, docs);
  documentResendDelivery(b, docs);
}

type DeliveryDocs = ReturnType<typeof webhookDeliveryDocs>;

/** The delivery schemas and the example record both webhook operations show. */
function webhookDeliveryDocs() {
  /** Webhook delivery records (GET /webhooks/deliveries), as the shop's support tooling sees them. */
  const deliverySchema = z
    .object({
      id: z.string(),
      event_id: z.string(),
      event_type: z.string(),
      payment_id: z.string(),
      target: z
        .enum(['webhook_url', 'callback_url'])
        .openapi({ description: "`WEBHOOK_URL` or the checkout's `callback_url`." }),
      url: z.string(),
      state: z.enum(['pending', 'delivered', 'gone', 'failed']),
      attempts: z.number().int(),
      last_status: z.number().int().nullable(),
      last_error: z.string().nullable(),
      next_attempt_at: z.string().nullable(),
      created_at: z.string(),
      updated_at: z.string(),
      delivered_at: z.string().nullable(),
      history: z
        .array(
          z.object({
            at: z.string(),
            status: z.number().int().nullable(),
            error: z.string().nullable(),
            duration_ms: z.number(),
          }),
        )
        .openapi({ description: 'The most recent attempts, oldest first.' }),
    })
    .openapi('WebhookDelivery');
  const deliveryListSchema = z.object({ data: z.array(deliverySchema) }).openapi('WebhookDeliveryList');

  const delivery = {
    id: 'dlv_x7k2m4p6q8r2s4t6u2v4_g',
    event_id: 'msg_x7k2m4p6q8r2s4t6u2v4',
    event_type: 'payment.succeeded',
    payment_id: PAYMENT_ID,
    target: 'webhook_url',
    url: 'https://shop.example/hooks/payments',
    state: 'delivered',
    attempts: 2,
    last_status: 200,
    last_error: null,
    next_attempt_at: null,
    created_at: '2026-11-25T14:00:41.000Z',
    updated_at: '2026-11-25T14:00:47.000Z',
    delivered_at: '2026-11-25T14:00:47.000Z',
    history: [
      { at: '2026-11-25T14:00:41.000Z', status: 503, error: null, duration_ms: 84 },
      { at: '2026-11-25T14:00:47.000Z', status: 200, error: null, duration_ms: 61 },
    ],
  } as const;
  return { deliverySchema, deliveryListSchema, delivery };
}

function documentListDeliveries(b: OpenApiBuilder, { deliveryListSchema, delivery }: DeliveryDocs): void {
  b.route({
    method: 'get',
    path: '/webhooks/deliveries',
    tags: ['Webhooks'],
    summary: "List a payment's webhook deliveries",
    description: 'Each event to each target, with its state and last attempt. For the shop backend only.',
    security: [{ shopKey: [] }],
    request: {
      query: z.object({
        payment_id: documented(paymentIdSchema).openapi({ param: { description: 'Payment id' }, example: PAYMENT_ID }),
      }),
    },
    responses: {
      200: {
        description: 'The deliveries, oldest first.',
        content: b.content('GET /webhooks/deliveries 200', deliveryListSchema, {
          one: { summary: 'Delivered on the second attempt', value: { data: [delivery] } },
        }),
      },
      ...b.problems('GET /webhooks/deliveries', ['validation_failed', 'unauthorized', 'store_unavailable']),
    },
  });
}

function documentResendDelivery(b: OpenApiBuilder, { deliverySchema, delivery }: DeliveryDocs): void {
  b.route({
    method: 'post',
    path: '/webhooks/deliveries/{id}/resend',
    tags: ['Webhooks'],
    summary: 'Send a delivery again',
    description:
      'Starts the retry schedule again for this event and target (same `webhook-id`, so receivers can deduplicate).',
    security: [{ shopKey: [] }],
    request: {
      params: z.object({ id: z.string().openapi({ param: { description: 'Delivery id' }, example: delivery.id }) }),
    },
    responses: {
      202: {
        description: 'Queued.',
        content: b.content('POST /webhooks/deliveries/{id}/resend 202', deliverySchema, {
          queued: {
            summary: 'Queued again',
            value: { ...delivery, state: 'pending', next_attempt_at: '2026-11-25T15:00:00.000Z' },
          },
        }),
      },
      ...b.problems('POST /webhooks/deliveries/{id}/resend', [
        'unauthorized',
        'delivery_not_found',
        'delivery_in_progress',
        'webhook_target_gone',
        'store_unavailable',
      ]),
    },
  });
}
