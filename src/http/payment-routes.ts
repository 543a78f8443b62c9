import { Router } from 'express';
import { listPayments, type ListPaymentsDeps } from '../payments/list-payments.js';
import { PAYMENT_STATUSES, toPaymentView, type PaymentView } from '../payments/payment.js';
import type { PaymentStore } from '../payments/ports.js';
import { z } from 'zod';
import {
  canceledExample,
  documented,
  failedExample,
  idParams,
  paymentAuth,
  paymentDoc,
  PAYMENT_ID,
  paymentExample,
  succeededExample,
  type OpenApiBuilder,
} from './openapi-builder.js';
import { loadAuthorizedPayment, requireShopKey } from './payment-access.js';
import { validationError } from './problem.js';
import { groupBracketParams, listPaymentsQuerySchema, paymentIdSchema } from './schemas.js';

export interface PaymentRouteDeps {
  store: PaymentStore;
  cancelPayment: (paymentId: string) => Promise<PaymentView>;
  shopApiKey: string | undefined;
  list: ListPaymentsDeps;
}

export function createPaymentRoutes(deps: PaymentRouteDeps): Router {
  const router = Router();

  // The shop backend's list, for reconciling its orders (DESIGN.md GET /payments); shop key only.
  router.get('/payments', async (req, res) => {
    requireShopKey(req, deps.shopApiKey);
    const parsed = listPaymentsQuerySchema.safeParse(groupBracketParams(req.query));
    if (!parsed.success) throw validationError(parsed.error, 'query');
    const q = parsed.data;
    const list = await listPayments(deps.list, {
      limit: q.limit,
      startingAfter: q.starting_after,
      endingBefore: q.ending_before,
      status: q.status,
      createdGte: q.created?.gte,
      createdLt: q.created?.lt,
      metadata: q.metadata,
    });
    res.setHeader('Cache-Control', 'no-store');
    res.json({ object: 'list', data: list.data, has_more: list.hasMore, next_cursor: list.nextCursor });
  });

  router.get('/payments/:id', async (req, res) => {
    const { payment } = await loadAuthorizedPayment(req, deps);
    res.setHeader('Cache-Control', 'no-store');
    res.json(toPaymentView(payment));
  });

  // DESIGN.md names the shop as the caller; the customer holding the client secret may cancel their
  // own payment too (the storefront's "cancel" on the waiting screen).
  router.post('/payments/:id/cancel', async (req, res) => {
    const { payment } = await loadAuthorizedPayment(req, deps);
    res.json(await deps.cancelPayment(payment.id));
  });

  return router;
}

/** The OpenAPI operations of the routes above, declared beside them so both change together. */
export function documentPaymentRoutes(b: OpenApiBuilder): void {
  documentListPayments(b);
  documentGetPayment(b);
  documentCancelPayment(b);
}

function documentListPayments(b: OpenApiBuilder): void {
  const paymentList = z
    .object({
      object: z.literal('list'),
      data: z.array(paymentDoc).openapi({ description: 'Newest first (also when paging with `ending_before`).' }),
      has_more: z.boolean().openapi({ description: 'More payments match beyond this page.' }),
      next_cursor: z
        .string()
        .nullable()
        .openapi({
          description:
            'Pass as `starting_after` (or as `ending_before` when paging that way) for the next page; null at the end. ' +
            'Usually the last id in `data`; a filtered page that examined 1,000 payments without filling up stops early ' +
            'and names the last payment it examined.',
        }),
    })
    .openapi('PaymentList');

  b.route({
    method: 'get',
    path: '/payments',
    tags: ['Payments'],
    summary: 'List payments',
    description:
      'For the shop backend (shop key) only: payments created within `PAYMENT_RETENTION_HOURS`, newest first by ' +
      '`created_at` then id, paged with cursors as Stripe pages lists. Payments created while you page never make ' +
      'an item repeat or an older one disappear.',
    security: [{ shopKey: [] }],
    request: { query: listPaymentsQueryDoc() },
    responses: {
      200: {
        description: 'One page (`Cache-Control: no-store`).',
        content: b.content('GET /payments 200', paymentList, {
          page: {
            summary: 'A page with more behind it',
            value: {
              object: 'list',
              data: [succeededExample, { ...failedExample, id: 'pay_a7d2kq4mz5x2r6t3y4u7' }],
              has_more: true,
              next_cursor: 'pay_a7d2kq4mz5x2r6t3y4u7',
            },
          },
          last: { summary: 'The last page', value: { object: 'list', data: [], has_more: false, next_cursor: null } },
        }),
      },
      ...b.problems('GET /payments', ['validation_failed', 'unauthorized', 'store_unavailable']),
    },
  });
}

function documentGetPayment(b: OpenApiBuilder): void {
  b.route({
    method: 'get',
    path: '/payments/{id}',
    tags: ['Payments'],
    summary: 'Get a payment',
    description:
      'For the storefront (client secret) and the shop (shop key). Anything else is the same `404` as an unknown id.',
    security: paymentAuth,
    request: { params: idParams },
    responses: {
      200: {
        description: 'The payment (`Cache-Control: no-store`).',
        content: b.content('GET /payments/{id} 200', paymentDoc, {
          pending: { summary: 'Waiting for the customer', value: paymentExample },
          succeeded: { summary: 'Paid', value: succeededExample },
          declined: { summary: 'The customer declined in the bank app', value: failedExample },
        }),
      },
      ...b.problems('GET /payments/{id}', ['payment_not_found', 'store_unavailable']),
    },
  });
}

function documentCancelPayment(b: OpenApiBuilder): void {
  b.route({
    method: 'post',
    path: '/payments/{id}/cancel',
    tags: ['Payments'],
    summary: 'Cancel a payment',
    description: 'Allowed before `processing`; stops polling the bank. Canceling a canceled payment answers it again.',
    security: [{ clientSecret: [] }, { shopKey: [] }],
    request: { params: idParams },
    responses: {
      200: {
        description: 'The canceled payment.',
        content: b.content('POST /payments/{id}/cancel 200', paymentDoc, {
          canceled: { summary: 'Canceled', value: canceledExample },
        }),
      },
      ...b.problems('POST /payments/{id}/cancel', [
        'payment_not_found',
        'payment_not_cancelable',
        'payment_busy',
        'store_unavailable',
      ]),
    },
  });
}

/** The query of GET /payments: cursors, filters and page size. */
function listPaymentsQueryDoc() {
  const instant = z
    .union([z.number().int().openapi({ example: 1795621500 }), z.string().openapi({ format: 'date-time' })])
    .openapi({ description: 'Unix seconds (as Stripe takes it) or an RFC 3339 date-time.' });

  return z.object({
    limit: z
      .number()
      .int()
      .min(1)
      .max(100)
      .optional()
      .openapi({ param: { description: 'Page size, 1–100 (default 10).' }, example: 20 }),
    starting_after: documented(paymentIdSchema)
      .optional()
      .openapi({ param: { description: 'Cursor: the page of older payments after this id.' }, example: PAYMENT_ID }),
    ending_before: documented(paymentIdSchema)
      .optional()
      .openapi({ param: { description: 'Cursor: the page of newer payments before this id.' } }),
    status: z
      .enum(PAYMENT_STATUSES)
      .optional()
      .openapi({ param: { description: 'Only payments whose status is this one now.' }, example: 'succeeded' }),
    created: z
      .object({ gte: instant.optional(), lt: instant.optional() })
      .optional()
      .openapi({
        param: {
          style: 'deepObject',
          explode: true,
          description: '`created[gte]` (inclusive) and `created[lt]` (exclusive) bound `created_at`.',
        },
      }),
    metadata: z
      .record(z.string(), z.string())
      .optional()
      .openapi({
        param: {
          style: 'deepObject',
          explode: true,
          description: '`metadata[order_id]=A-10042`: only payments whose metadata has these values (up to 5 keys).',
        },
      }),
  });
}
