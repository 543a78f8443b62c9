import { Router, type Request } from 'express';
import { AppError } from '../errors.js';
import type { Catalog } from '../payments/catalog.js';
import type { CheckoutOrder, createStartCheckout } from '../payments/start-checkout.js';
import { callerOf } from './bearer.js';
import { validationError } from './problem.js';
import { checkoutRequestSchema, idempotencyKeySchema } from './schemas.js';

export interface CheckoutRouteDeps {
  catalog: Catalog;
  startCheckout: ReturnType<typeof createStartCheckout>;
  shopApiKey: string | undefined;
}

function parseOrder(req: Request): CheckoutOrder {
  if (!req.is('application/json'))
    throw new AppError('unsupported_media_type', 415, 'Send the checkout as application/json.');
  const parsed = checkoutRequestSchema.safeParse(req.body);
  if (!parsed.success) throw validationError(parsed.error);
  const body = parsed.data;
  return { items: body.items, loginHint: body.login_hint, callbackUrl: body.callback_url, metadata: body.metadata };
}

function parseIdempotencyKey(req: Request): string | null {
  const raw = req.get('idempotency-key');
  if (raw === undefined) return null;
  const parsed = idempotencyKeySchema.safeParse(raw);
  if (!parsed.success) throw validationError(parsed.error, 'Idempotency-Key header');
  return parsed.data;
}

/** GET /catalog and POST /checkout: parse, run the checkout use case (payments/start-checkout.ts), answer. */
export function createCheckoutRoutes(deps: CheckoutRouteDeps): Router {
  const router = Router();

  router.get('/catalog', (_req, res) => {
    res.json({ currency: deps.catalog.currency, items: deps.catalog.items });
  });

  router.post('/checkout', async (req, res) => {
    const order = parseOrder(req);
    const answer = await deps.startCheckout({
      caller: callerOf(req, deps.shopApiKey),
      clientAddress: req.ip ?? 'unknown',
      idempotencyKey: parseIdempotencyKey(req),
      order,
      requestId: String(res.getHeader('x-request-id') ?? ''),
    });
    if (answer.location !== null) res.setHeader('Location', answer.location);
    if (answer.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res
      .status(answer.status)
      .type(answer.status >= 400 ? 'application/problem+json' : 'application/json')
      .send(answer.body);
  });

  return router;
}
