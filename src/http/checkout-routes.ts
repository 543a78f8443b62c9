import { Router, type Request } from 'express';
import { AppError } from '../errors.js';
import type { Catalog } from '../payments/catalog.js';
import type { CheckoutOrder, createStartCheckout } from '../payments/start-checkout.js';
import { callerOf } from './bearer.js';
import { validationError } from './problem.js';
import { checkoutRequestSchema, checkoutResponseSchema, idempotencyKeySchema } from './schemas.js';
import type { RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z, type ZodType } from 'zod';
import { CLIENT_SECRET, documented, PAYMENT_ID, paymentExample, type OpenApiBuilder } from './openapi-builder.js';

export interface CheckoutRouteDeps {
  catalog: Catalog;
  startCheckout: ReturnType<typeof createStartCheckout>;
  shopApiKey: string | undefined;
}

function parseOrder(req: Request): CheckoutOrder {
  if (!req.is('application/json'))
    throw new AppError('unsupported_media_type', 'Send the checkout as application/json.');
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

/** The OpenAPI operations of the routes above, declared beside them so both change together. */
export function documentCheckoutRoutes(b: OpenApiBuilder): void {
  documentCatalog(b);
  documentCheckout(b);
}

function documentCatalog(b: OpenApiBuilder): void {
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
}

function documentCheckout(b: OpenApiBuilder): void {
  const checkoutResponse = documented(checkoutResponseSchema).openapi('CheckoutResponse', {
    description: 'The payment plus `client_secret`, shown only in this answer: keep it in the browser session.',
  });
  const checkoutRequest = documented(checkoutRequestSchema).openapi('CheckoutRequest', {
    description: 'Prices come from the server-side catalog, never from the client.',
  });

  b.route({
    method: 'post',
    path: '/checkout',
    tags: ['Storefront'],
    summary: 'Start a checkout paid by bank (CIBA)',
    description:
      'Prices the items from the catalog, asks the bank to authenticate the customer out of band, and answers `202` with the ' +
      'payment, its `client_secret` and the `binding_message` to show.\n\n' +
      'Two flows. **Storefront, anonymous:** the browser sends the cart and `login_hint`, nothing else; the payment is the ' +
      'catalog-priced cart. **Shop backend, with `Authorization: Bearer <SHOP_API_KEY>`:** may add `metadata` (e.g. its ' +
      'order id) and `callback_url`, which come back in the signed webhooks, and hands the `client_secret` of the answer to ' +
      'its own frontend. An anonymous request carrying `metadata` or `callback_url` is refused with 401 ' +
      '`shop_key_required` before the bank is asked; a key that is not the shop key counts as anonymous.\n\n' +
      'With `Idempotency-Key` (scoped to the shop, or else to the client address), the same key and body replay the ' +
      "stored answer (header `Idempotent-Replayed: true`); only the bank's own answers are stored: a refusal before the " +
      'bank is asked (validation, `shop_key_required`, an unknown sku, a limit), a 429 or a 5xx stores nothing, so a ' +
      'retry with a fixed request runs afresh; but a fault after the bank was asked is first settled: if the payment ' +
      'was created after all, its 202 is the answer (replayed to the retry), never a second payment. Until then a ' +
      'retry gets 409 `idempotency_key_in_use` with `Retry-After`.',
    security: [{}, { shopKey: [] }],
    request: checkoutRequestDoc(b, checkoutRequest),
    responses: checkoutResponsesDoc(b, checkoutResponse),
  });
}

function checkoutRequestDoc(b: OpenApiBuilder, checkoutRequest: ZodType): NonNullable<RouteConfig['request']> {
  return {
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
  };
}

function checkoutResponsesDoc(b: OpenApiBuilder, checkoutResponse: ZodType): RouteConfig['responses'] {
  return {
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
      'shop_key_required',
      'idempotency_key_in_use',
      'unknown_sku',
      'amount_too_large',
      'callback_origin_not_allowed',
      'idempotency_key_reused',
      'unknown_bank_user',
      'bank_request_rejected',
      'checkout_pending',
      'rate_limited',
      'customer_cooling_down',
      'bank_configuration_error',
      'bank_invalid_response',
      'bank_unavailable',
      'store_unavailable',
    ]),
  };
}
