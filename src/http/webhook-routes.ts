import { Router } from 'express';
import type { DeliveryStore } from '../webhooks/delivery-store.js';
import { resendDelivery, toDeliveryView, type ResendDeps } from '../webhooks/resend.js';
import { requireShopKey } from './payment-access.js';
import { validationError } from './problem.js';
import { paymentIdSchema } from './schemas.js';
import { z } from 'zod';

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
