import { Router } from 'express';
import { cancelPayment } from '../payments/cancel.js';
import { toPaymentView } from '../payments/payment.js';
import type { StateMachine } from '../payments/state-machine.js';
import type { PaymentStore } from '../store/payment-store.js';
import { loadAuthorizedPayment } from './payment-access.js';

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
