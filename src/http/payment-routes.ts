import { Router } from 'express';
import { cancelPayment } from '../payments/cancel.js';
import { toPaymentView } from '../payments/payment.js';
import type { StateMachine } from '../payments/state-machine.js';
import type { PaymentStore } from '../store/payment-store.js';
import { loadAuthorizedPayment } from './payment-access.js';
import {
  canceledExample,
  failedExample,
  idParams,
  paymentAuth,
  paymentDoc,
  paymentExample,
  succeededExample,
  type OpenApiBuilder,
} from './openapi-builder.js';

export interface PaymentRouteDeps {
  store: PaymentStore;
  stateMachine: StateMachine;
  shopApiKey: string | undefined;
}

export function createPaymentRoutes(deps: PaymentRouteDeps): Router {
  const router = Router();

  router.get('/payments/:id', async (req, res) => {
    const { payment } = await loadAuthorizedPayment(req, deps);
    res.setHeader('Cache-Control', 'no-store');
    res.json(toPaymentView(payment));
  });

  // DESIGN.md names the shop as the caller; the customer holding the client secret may cancel their
  // own payment too (the storefront's "cancel" on the waiting screen).
  router.post('/payments/:id/cancel', async (req, res) => {
    const { payment } = await loadAuthorizedPayment(req, deps);
    res.json(await cancelPayment(deps, payment.id));
  });

  return router;
}

/** The OpenAPI operations of the routes above, declared beside them so both change together. */
export function documentPaymentRoutes(b: OpenApiBuilder): void {
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
