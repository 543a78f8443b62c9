import { Router } from 'express';
import { cancelPayment } from '../payments/cancel.js';
import { listPayments, type ListPaymentsDeps } from '../payments/list-payments.js';
import { toPaymentView } from '../payments/payment.js';
import type { StateMachine } from '../payments/state-machine.js';
import type { PaymentStore } from '../store/payment-store.js';
import { loadAuthorizedPayment, requireShopKey } from './payment-access.js';
import { validationError } from './problem.js';
import { groupBracketParams, listPaymentsQuerySchema } from './schemas.js';

export interface PaymentRouteDeps {
  store: PaymentStore;
  stateMachine: StateMachine;
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
    res.json(await cancelPayment(deps, payment.id));
  });

  return router;
}
