import { Router, type Request, type Response } from 'express';
import { AppError } from '../errors.js';
import type { Catalog } from '../payments/catalog.js';
import type { CheckoutService } from '../payments/checkout.js';
import { sha256 } from '../payments/secrets.js';
import type { IdempotencyStore } from '../store/idempotency-store.js';
import type { Metrics } from '../metrics.js';
import { problemBody, validationError } from './problem.js';
import type { RateLimits } from './rate-limits.js';
import {
  checkoutRequestSchema,
  checkoutResponseSchema,
  idempotencyKeySchema,
  type CheckoutRequest,
} from './schemas.js';
import { isShopKey } from './payment-access.js';
import { z } from 'zod';
import { CLIENT_SECRET, documented, PAYMENT_ID, paymentExample, type OpenApiBuilder } from './openapi-builder.js';

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
    throw new AppError('unsupported_media_type', 'Send the checkout as application/json.');
  const parsed = checkoutRequestSchema.safeParse(req.body);
  if (!parsed.success) throw validationError(parsed.error);
  return parsed.data;
}

function assertCallbackAllowed(url: string | undefined, allowed: readonly string[]): void {
  if (url === undefined) return;
  if (!allowed.includes(new URL(url).origin)) {
    throw new AppError(
      'callback_origin_not_allowed',
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
          throw new AppError('idempotency_key_reused', 'This Idempotency-Key was used with a different request body.');
        case 'in_flight':
          throw new AppError(
            'idempotency_key_in_use',
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

/** The OpenAPI operations of the routes above, declared beside them so both change together. */
export function documentCheckoutRoutes(b: OpenApiBuilder): void {
  const catalogResponseSchema = z
    .object({
      currency: z.string().regex(/^[a-z]{3}$/),
      items: z.array(
        z.object({
          sku: z.string(),
          name: z.string(),
          unit_amount: z.number().int().positive().openapi({ description: 'Price in minor units of `currency`.' }),
          description: z.string().optional(),
          image: z.string().optional(),
        }),
      ),
    })
    .openapi('Catalog');
  const checkoutResponse = documented(checkoutResponseSchema).openapi('CheckoutResponse', {
    description: 'The payment plus `client_secret`, shown only in this answer: keep it in the browser session.',
  });
  const checkoutRequest = documented(checkoutRequestSchema).openapi('CheckoutRequest', {
    description: 'Prices come from the server-side catalog, never from the client.',
  });

  b.route({
    method: 'get',
    path: '/catalog',
    tags: ['Storefront'],
    summary: 'List the items for sale',
    description: 'The items of `CATALOG_FILE` with their prices in minor units.',
    responses: {
      200: {
        description: 'The catalog.',
        content: b.content('GET /catalog 200', catalogResponseSchema, {
          catalog: {
            summary: 'Two teas',
            value: {
              currency: 'eur',
              items: [
                {
                  sku: 'tea-01',
                  name: 'Green tea, 100 g',
                  unit_amount: 1290,
                  description: 'Sencha from Shizuoka, first flush.',
                },
                { sku: 'tea-02', name: 'Black tea, 250 g', unit_amount: 990 },
              ],
            },
          },
        }),
      },
      ...b.problems('GET /catalog', []),
    },
  });
  b.route({
    method: 'post',
    path: '/checkout',
    tags: ['Storefront'],
    summary: 'Start a checkout paid by bank (CIBA)',
    description:
      'Prices the items from the catalog, asks the bank to authenticate the customer out of band, and answers `202` with the ' +
      'payment, its `client_secret` and the `binding_message` to show. With `Idempotency-Key`, the same key and body replay ' +
      'the stored answer (header `Idempotent-Replayed: true`); 429 and 5xx answers free the key for a retry.',
    security: [{}, { shopKey: [] }],
    request: {
      headers: z.object({
        'Idempotency-Key': documented(idempotencyKeySchema)
          .optional()
          .openapi({
            param: { description: 'Up to 255 printable ASCII characters, e.g. a UUID per cart attempt.' },
            example: '5b0c2f9e-3d7a-4e8b-9c1d-2a3b4c5d6e7f',
          }),
      }),
      body: {
        required: true,
        content: b.content('POST /checkout request', checkoutRequest, {
          minimal: {
            summary: 'What the storefront sends',
            value: {
              items: [
                { sku: 'tea-01', quantity: 2 },
                { sku: 'tea-02', quantity: 1 },
              ],
              login_hint: 'user',
            },
          },
          withCallback: {
            summary: 'From the shop backend, with a webhook target and metadata',
            value: {
              items: [{ sku: 'pot-01', quantity: 1 }],
              login_hint: 'user',
              callback_url: 'https://shop.example/hooks/payments',
              metadata: { order_id: 'A-10042' },
            },
          },
        }),
      },
    },
    responses: {
      202: {
        description: 'The bank is asking the customer. Follow the payment at `Location`.',
        headers: z.object({
          Location: z.string().openapi({ example: `/payments/${PAYMENT_ID}` }),
          'Idempotent-Replayed': z
            .literal('true')
            .optional()
            .openapi({ description: 'Present when this is a stored answer.' }),
        }),
        content: b.content('POST /checkout 202', checkoutResponse, {
          accepted: { summary: 'Waiting for the customer', value: { ...paymentExample, client_secret: CLIENT_SECRET } },
        }),
      },
      ...b.problems('POST /checkout', [
        'validation_failed',
        'malformed_json',
        'unsupported_media_type',
        'unsupported_encoding',
        'body_too_large',
        'idempotency_key_in_use',
        'unknown_sku',
        'amount_too_large',
        'callback_origin_not_allowed',
        'idempotency_key_reused',
        'unknown_bank_user',
        'bank_request_rejected',
        'rate_limited',
        'bank_configuration_error',
        'bank_invalid_response',
        'bank_unavailable',
        'store_unavailable',
      ]),
    },
  });
}
