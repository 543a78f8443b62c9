import { Router, type Request, type Response } from 'express';
import { AppError } from '../errors.js';
import type { Catalog } from '../payments/catalog.js';
import type { CheckoutService } from '../payments/checkout.js';
import { sha256 } from '../crypto/hashing.js';
import type { IdempotencyStore } from '../store/idempotency-store.js';
import type { Metrics } from '../metrics.js';
import { problemBody, validationError } from './problem.js';
import type { RateLimits } from './rate-limits.js';
import { checkoutRequestSchema, idempotencyKeySchema, type CheckoutRequest } from './schemas.js';
import { isShopKey } from './payment-access.js';

export interface CheckoutRouteDeps {
  checkout: CheckoutService;
  catalog: Catalog;
  idempotency: IdempotencyStore;
  rateLimits: RateLimits;
  metrics: Metrics;
  callbackAllowedOrigins: readonly string[];
  shopApiKey: string | undefined;
}

function parseBody(req: Request): CheckoutRequest {
  if (!req.is('application/json'))
    throw new AppError('unsupported_media_type', 415, 'Send the checkout as application/json.');
  const parsed = checkoutRequestSchema.safeParse(req.body);
  if (!parsed.success) throw validationError(parsed.error);
  return parsed.data;
}

function assertCallbackAllowed(url: string | undefined, allowed: readonly string[]): void {
  if (url === undefined) return;
  if (!allowed.includes(new URL(url).origin)) {
    throw new AppError(
      'callback_origin_not_allowed',
      422,
      'callback_url must be on an origin listed in CALLBACK_ALLOWED_ORIGINS.',
      {
        errors: [{ path: '$.callback_url', message: 'origin not allowed' }],
      },
    );
  }
}

/** Idempotency keys are per caller: the shop's key, or else the client address. */
function callerScope(req: Request, shopApiKey: string | undefined): string {
  const auth = req.get('authorization');
  if (auth?.startsWith('Bearer ') && isShopKey(auth.slice(7), shopApiKey)) return 'shop';
  return `ip:${req.ip ?? 'unknown'}`;
}

export function createCheckoutRoutes(deps: CheckoutRouteDeps): Router {
  const router = Router();

  router.get('/catalog', (_req, res) => {
    res.json({ currency: deps.catalog.currency, items: deps.catalog.items });
  });

  router.post('/checkout', async (req: Request, res: Response) => {
    const body = parseBody(req);
    assertCallbackAllowed(body.callback_url, deps.callbackAllowedOrigins);
    const rawKey = req.get('idempotency-key');
    let key: string | null = null;
    if (rawKey !== undefined) {
      const parsedKey = idempotencyKeySchema.safeParse(rawKey);
      if (!parsedKey.success) throw validationError(parsedKey.error, 'Idempotency-Key header');
      key = parsedKey.data;
    }
    const scope = callerScope(req, deps.shopApiKey);
    if (key !== null) {
      const claim = await deps.idempotency.claim(scope, key, sha256(JSON.stringify(body)));
      switch (claim.state) {
        case 'mismatch':
          throw new AppError(
            'idempotency_key_reused',
            422,
            'This Idempotency-Key was used with a different request body.',
          );
        case 'in_flight':
          throw new AppError(
            'idempotency_key_in_use',
            409,
            'A request with this Idempotency-Key is still being processed.',
            { retryAfterSeconds: 1 },
          );
        case 'replay':
          if (claim.location) res.setHeader('Location', claim.location);
          res.setHeader('Idempotent-Replayed', 'true');
          res
            .status(claim.status)
            .type(claim.status >= 400 ? 'application/problem+json' : 'application/json')
            .send(claim.body);
          return;
        case 'new':
          break;
      }
    }
    // Once the payment exists, the key must never be freed: a retry would start a second payment.
    let started = false;
    try {
      await deps.rateLimits.checkoutByIp(req.ip ?? 'unknown');
      await deps.rateLimits.checkoutByLoginHint(body.login_hint);
      const result = await deps.checkout.startCheckout({
        items: body.items,
        loginHint: body.login_hint,
        callbackUrl: body.callback_url,
        metadata: body.metadata,
        requestId: String(res.getHeader('x-request-id') ?? ''),
      });
      started = true;
      const location = `/payments/${result.payment.id}`;
      const json = JSON.stringify({ ...result.payment, client_secret: result.clientSecret });
      if (key !== null) await deps.idempotency.complete(scope, key, { status: 202, body: json, location });
      deps.metrics.checkouts.inc({ outcome: 'accepted' });
      res.status(202).setHeader('Location', location).type('application/json').send(json);
    } catch (err) {
      deps.metrics.checkouts.inc({ outcome: err instanceof AppError ? err.code : 'internal_error' });
      // Definite answers are kept for replay; retryable ones (429, 5xx) free the key for the retry.
      if (key !== null && !started) {
        if (err instanceof AppError && err.status < 500 && err.status !== 429) {
          await deps.idempotency.complete(scope, key, {
            status: err.status,
            body: JSON.stringify(problemBody(err)),
            location: null,
          });
        } else await deps.idempotency.release(scope, key);
      }
      throw err;
    }
  });

  return router;
}
