import {
  OpenAPIRegistry,
  OpenApiGeneratorV31,
  extendZodWithOpenApi,
  type ResponseConfig,
  type RouteConfig,
} from '@asteasolutions/zod-to-openapi';
import { z, type ZodType } from 'zod';
import { PROBLEM_TITLES, PROBLEM_TYPE_BASE } from './problem.js';
import {
  checkoutRequestSchema,
  checkoutResponseSchema,
  idempotencyKeySchema,
  notifyRequestSchema,
  paymentIdSchema,
  paymentSchema,
} from './schemas.js';
import { PAYMENT_STATUSES } from '../payments/payment.js';

/**
 * The OpenAPI 3.1 document of the shop-facing API, generated from the zod schemas the routes
 * validate with (schemas.ts). Every example below is also checked against its schema by
 * test/integration/openapi.test.ts, so the document cannot drift from what the code accepts.
 */
extendZodWithOpenApi(z);

/** schemas.ts builds its schemas before this module extends zod; a clone made now has `.openapi`. */
function documented<T extends ZodType>(schema: T): T {
  return schema.clone();
}

// ---- problem codes --------------------------------------------------------------------------

interface ProblemInfo {
  status: number;
  /** An example `detail`, the text the code really sends. */
  detail: string;
  /** When it happens, for the docs. */
  when: string;
}

/** Every `code` a problem+json answer can carry (RFC 9457 plus our stable `code`). */
export const PROBLEMS = {
  validation_failed: {
    status: 400,
    detail: 'The request body is not valid.',
    when: 'The body or a header fails validation; `errors[]` lists each JSON path.',
  },
  malformed_json: {
    status: 400,
    detail: 'The request body is not valid JSON.',
    when: 'The body cannot be parsed as JSON.',
  },
  invalid_request: {
    status: 400,
    detail: 'The notification needs an auth_req_id.',
    when: 'A ping notification without a valid `auth_req_id`.',
  },
  bad_request: { status: 400, detail: 'The request could not be read.', when: 'Any other unreadable request.' },
  unauthorized: {
    status: 401,
    detail: 'This route needs the shop API key.',
    when: 'A shop-only route called without `SHOP_API_KEY`.',
  },
  invalid_notification_token: {
    status: 401,
    detail: 'Unknown client_notification_token.',
    when: 'A ping notification with an unknown bearer token (never a redirect, CIBA Core §10.2).',
  },
  not_found: { status: 404, detail: 'No route for GET /nope.', when: 'No such route.' },
  delivery_not_found: {
    status: 404,
    detail: 'No such webhook delivery.',
    when: 'Unknown delivery id, or its event is no longer kept.',
  },
  payment_not_found: {
    status: 404,
    detail: 'No such payment.',
    when: 'Unknown id, or a missing or wrong client secret or shop key: the same answer, so ids cannot be probed.',
  },
  idempotency_key_in_use: {
    status: 409,
    detail: 'A request with this Idempotency-Key is still being processed.',
    when: 'The first request with this key has not finished yet; retry after `Retry-After`.',
  },
  payment_not_cancelable: {
    status: 409,
    detail: 'A payment in status processing can no longer be canceled.',
    when: 'Cancel after the payment reached `processing` or a final status.',
  },
  delivery_in_progress: {
    status: 409,
    detail: 'An attempt of this delivery is in progress.',
    when: 'Resend while an attempt of that delivery is running.',
  },
  webhook_target_gone: {
    status: 409,
    detail: 'The receiver answered 410 Gone; nothing more is sent to this URL.',
    when: 'Resend to a URL that answered `410 Gone`.',
  },
  payment_busy: {
    status: 409,
    detail: 'The payment is changing right now; try again.',
    when: 'Cancel raced with a status change; retry.',
  },
  body_too_large: { status: 413, detail: 'The request body is larger than 16 KiB.', when: 'Bodies over 16 KiB.' },
  unsupported_media_type: {
    status: 415,
    detail: 'Send the checkout as application/json.',
    when: 'A body that is not `application/json`.',
  },
  unsupported_encoding: {
    status: 415,
    detail: 'The request body encoding is not supported.',
    when: 'A charset or content encoding the service does not read.',
  },
  unknown_sku: {
    status: 422,
    detail: 'No item with sku "tea-99" is sold here.',
    when: 'An item that is not in the catalog.',
  },
  amount_too_large: {
    status: 422,
    detail: 'The total is larger than one payment may be.',
    when: 'The total exceeds the largest single payment.',
  },
  callback_origin_not_allowed: {
    status: 422,
    detail: 'callback_url must be on an origin listed in CALLBACK_ALLOWED_ORIGINS.',
    when: '`callback_url` on an origin not in `CALLBACK_ALLOWED_ORIGINS`.',
  },
  idempotency_key_reused: {
    status: 422,
    detail: 'This Idempotency-Key was used with a different request body.',
    when: 'The same key with another body.',
  },
  unknown_bank_user: {
    status: 422,
    detail: 'The bank does not know this customer.',
    when: 'The bank answered `unknown_user_id` to the backchannel request.',
  },
  bank_request_rejected: {
    status: 422,
    detail: 'The bank refused to start the authorization.',
    when: 'The bank refused the backchannel request for another reason.',
  },
  rate_limited: {
    status: 429,
    detail: 'Too many checkouts from this address; wait a little.',
    when: 'Per client address or per bank customer (`login_hint`) limit; see `Retry-After`.',
  },
  internal_error: {
    status: 500,
    detail: 'Something went wrong on our side.',
    when: 'An unexpected fault; details only reach the log.',
  },
  bank_configuration_error: {
    status: 502,
    detail: "The bank refused the shop's credentials.",
    when: "The bank rejected the shop's client authentication.",
  },
  bank_invalid_response: {
    status: 502,
    detail: 'The bank answered with something that is not a valid CIBA response.',
    when: 'No `auth_req_id` or no numeric `expires_in` in the bank answer; no token request is sent.',
  },
  bank_unavailable: {
    status: 503,
    detail: 'The bank cannot be reached right now.',
    when: 'The bank is down or overloaded; retry after `Retry-After`.',
  },
  store_unavailable: {
    status: 503,
    detail: 'The payment store is unavailable right now; try again shortly.',
    when: 'Redis cannot be reached; retry after `Retry-After`.',
  },
} as const satisfies Record<string, ProblemInfo>;

export type ProblemCode = keyof typeof PROBLEMS;
const PROBLEM_CODES = Object.keys(PROBLEMS) as [ProblemCode, ...ProblemCode[]];
const RETRY_AFTER_CODES: readonly ProblemCode[] = [
  'idempotency_key_in_use',
  'rate_limited',
  'bank_unavailable',
  'store_unavailable',
];

// ---- schemas only the document needs (the rest come from schemas.ts) ------------------------

export const problemSchema = z
  .object({
    type: z.string().openapi({ description: `\`${PROBLEM_TYPE_BASE}<code>\`` }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().openapi({ description: 'For people; match on `code`, not on this text.' }),
    code: z.enum(PROBLEM_CODES).openapi({ description: 'Stable snake_case error code.' }),
    errors: z
      .array(z.object({ path: z.string().openapi({ example: '$.items[0].quantity' }), message: z.string() }))
      .optional()
      .openapi({
        description: 'Validation errors with JSON paths (`validation_failed`, `callback_origin_not_allowed`).',
      }),
    request_id: z
      .string()
      .optional()
      .openapi({ description: 'Also in the `X-Request-Id` header; quote it to support.' }),
  })
  .openapi('Problem', { description: 'RFC 9457 problem details (`application/problem+json`).' });

export const catalogResponseSchema = z
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

export const livezResponseSchema = z.object({ status: z.literal('ok') }).openapi('Liveness');
export const readyzResponseSchema = z
  .object({ status: z.enum(['ready', 'not_ready']), checks: z.record(z.string(), z.boolean()) })
  .openapi('Readiness', {
    description: 'Each check is true when ready; `accepting_work` turns false during shutdown.',
  });

/** Webhook delivery records (GET /webhooks/deliveries), as the shop's support tooling sees them. */
export const deliverySchema = z
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
export const deliveryListSchema = z.object({ data: z.array(deliverySchema) }).openapi('WebhookDeliveryList');

const payment = documented(paymentSchema).openapi('Payment', {
  description: 'Amounts in minor units, currency lower-case ISO 4217. Never shows tokens or auth_req_id.',
});
const checkoutResponse = documented(checkoutResponseSchema).openapi('CheckoutResponse', {
  description: 'The payment plus `client_secret`, shown only in this answer: keep it in the browser session.',
});
const checkoutRequest = documented(checkoutRequestSchema).openapi('CheckoutRequest', {
  description: 'Prices come from the server-side catalog, never from the client.',
});

// ---- examples -------------------------------------------------------------------------------

const PAYMENT_ID = 'pay_3kq9w2mz7x4r5t6y7u2a';
const paymentExample = {
  id: PAYMENT_ID,
  status: 'pending_authorization',
  amount: 3570,
  currency: 'eur',
  items: [
    { sku: 'tea-01', quantity: 2, unit_amount: 1290 },
    { sku: 'tea-02', quantity: 1, unit_amount: 990 },
  ],
  binding_message: 'K7P2-QX',
  expires_at: '2026-11-25T14:03:20.000Z',
  failure_code: null,
  created_at: '2026-11-25T14:00:00.000Z',
  updated_at: '2026-11-25T14:00:00.000Z',
  metadata: { order_id: 'A-10042' },
} satisfies z.input<typeof paymentSchema>;
const succeededExample = { ...paymentExample, status: 'succeeded', updated_at: '2026-11-25T14:00:41.000Z' } as const;
const failedExample = {
  ...paymentExample,
  status: 'failed',
  failure_code: 'access_denied',
  updated_at: '2026-11-25T14:00:30.000Z',
} as const;
const canceledExample = { ...paymentExample, status: 'canceled', updated_at: '2026-11-25T14:00:20.000Z' } as const;
const CLIENT_SECRET = `${PAYMENT_ID}_secret_Xq2v9LrT0kYb3NwZ8pFh4s`;

function problemExample(code: ProblemCode): z.input<typeof problemSchema> {
  const info: ProblemInfo = PROBLEMS[code];
  return {
    type: `${PROBLEM_TYPE_BASE}${code}`,
    title: PROBLEM_TITLES[info.status] ?? 'Error',
    status: info.status,
    detail: info.detail,
    code,
    ...(code === 'validation_failed'
      ? { errors: [{ path: '$.items[0].quantity', message: 'Too small: expected number to be >=1' }] }
      : {}),
    ...(code === 'callback_origin_not_allowed'
      ? { errors: [{ path: '$.callback_url', message: 'origin not allowed' }] }
      : {}),
    request_id: '4f7c1e9a-2b1d-4c55-9a0e-1f2d3c4b5a69',
  };
}

// ---- document -------------------------------------------------------------------------------

interface Example {
  summary: string;
  value: unknown;
}

/** An example together with the zod schema it must satisfy (for the test that keeps them honest). */
export interface RecordedExample {
  where: string;
  schema: ZodType;
  value: unknown;
}

export interface OpenApiBuild {
  document: ReturnType<OpenApiGeneratorV31['generateDocument']>;
  examples: RecordedExample[];
}

/** Documented routes as `METHOD /express/:path`, for the test that compares them with the app's routes. */
export const DOCUMENTED_ROUTES: string[] = [];

function createBuilder() {
  const registry = new OpenAPIRegistry();
  const examples: RecordedExample[] = [];

  const content = (where: string, schema: ZodType, byName: Record<string, Example>, mediaType = 'application/json') => {
    for (const [name, ex] of Object.entries(byName))
      examples.push({ where: `${where} (${name})`, schema, value: ex.value });
    return { [mediaType]: { schema, examples: byName } };
  };

  const problems = (where: string, codes: ProblemCode[]): Record<string, ResponseConfig> => {
    const byStatus = new Map<number, ProblemCode[]>();
    for (const code of [...codes, 'internal_error' as const]) {
      const status = PROBLEMS[code].status;
      byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
    }
    const out: Record<string, ResponseConfig> = {};
    for (const [status, group] of byStatus) {
      const byName = Object.fromEntries(group.map((c) => [c, { summary: PROBLEMS[c].when, value: problemExample(c) }]));
      out[String(status)] = {
        description: `${PROBLEM_TITLES[status] ?? 'Error'}: ${group.map((c) => `\`${c}\``).join(', ')}`,
        ...(group.some((c) => RETRY_AFTER_CODES.includes(c))
          ? {
              headers: z.object({
                'Retry-After': z
                  .string()
                  .optional()
                  .openapi({ description: 'Seconds to wait before retrying.', example: '5' }),
              }),
            }
          : {}),
        content: content(`${where} ${status}`, problemSchema, byName, 'application/problem+json'),
      };
    }
    return out;
  };

  const route = (config: RouteConfig) => {
    DOCUMENTED_ROUTES.push(`${config.method.toUpperCase()} ${config.path.replace(/\{(\w+)\}/g, ':$1')}`);
    registry.registerPath(config);
  };

  return { registry, examples, content, problems, route };
}

type Builder = ReturnType<typeof createBuilder>;

function registerSecurity({ registry }: Builder) {
  registry.registerComponent('securitySchemes', 'clientSecret', {
    type: 'http',
    scheme: 'bearer',
    description: 'The `client_secret` from the checkout answer: gives access to that one payment.',
  });
  registry.registerComponent('securitySchemes', 'clientSecretQuery', {
    type: 'apiKey',
    in: 'query',
    name: 'client_secret',
    description:
      'The same secret as a query parameter, for `EventSource`, which cannot set headers. Request logs drop query strings.',
  });
  registry.registerComponent('securitySchemes', 'shopKey', {
    type: 'http',
    scheme: 'bearer',
    description:
      "The shop backend's key (`SHOP_API_KEY`): any payment, webhook deliveries; also scopes Idempotency-Keys to the shop.",
  });
  registry.registerComponent('securitySchemes', 'notificationToken', {
    type: 'http',
    scheme: 'bearer',
    description:
      'The `client_notification_token` sent with the backchannel request (CIBA Core §10.2), one per payment.',
  });
}

const paymentAuth = [{ clientSecret: [] }, { clientSecretQuery: [] }, { shopKey: [] }];
const idParams = z.object({
  id: documented(paymentIdSchema).openapi({ param: { description: 'Payment id' }, example: PAYMENT_ID }),
});

function registerCheckout(b: Builder) {
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

const SSE_EXAMPLE = [
  'retry: 3000\n',
  `id: 1795621588993-0\nevent: payment.pending_authorization\ndata: ${JSON.stringify(paymentExample)}\n`,
  `id: 1795621630412-0\nevent: payment.succeeded\ndata: ${JSON.stringify(succeededExample)}\n`,
].join('\n');

const paymentList = z
  .object({
    object: z.literal('list'),
    data: z.array(payment).openapi({ description: 'Newest first (also when paging with `ending_before`).' }),
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

const instant = z
  .union([z.number().int().openapi({ example: 1795621500 }), z.string().openapi({ format: 'date-time' })])
  .openapi({ description: 'Unix seconds (as Stripe takes it) or an RFC 3339 date-time.' });

const listQuery = z.object({
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

function registerPayments(b: Builder) {
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
    request: { query: listQuery },
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
        content: b.content('GET /payments/{id} 200', payment, {
          pending: { summary: 'Waiting for the customer', value: paymentExample },
          succeeded: { summary: 'Paid', value: succeededExample },
          declined: { summary: 'The customer declined in the bank app', value: failedExample },
        }),
      },
      ...b.problems('GET /payments/{id}', ['payment_not_found', 'store_unavailable']),
    },
  });

  b.route({
    method: 'get',
    path: '/payments/{id}/events',
    tags: ['Payments'],
    summary: 'Follow a payment with server-sent events',
    description:
      'A `text/event-stream` of status changes. Each event is named `payment.<status>` and its `data` is the Payment JSON ' +
      '(schema `Payment`); comment lines (`: ping`) keep idle connections open. Resumes after `Last-Event-ID`; the stream ends ' +
      'after a terminal status (`succeeded`, `failed`, `canceled`).',
    security: paymentAuth,
    request: {
      params: idParams,
      headers: z.object({
        'Last-Event-ID': z
          .string()
          .optional()
          .openapi({
            param: {
              description:
                "The `id` of the last event received (the event's 1-based position); EventSource sends it when it reconnects.",
            },
            example: '2',
          }),
      }),
      query: z.object({
        last_event_id: z
          .string()
          .optional()
          .openapi({ param: { description: 'The same as `Last-Event-ID`, for clients that cannot set headers.' } }),
      }),
    },
    responses: {
      200: {
        description: 'The event stream.',
        content: b.content(
          'GET /payments/{id}/events 200',
          z.string().openapi({ description: 'Events `payment.<status>` with the Payment as `data`.' }),
          { stream: { summary: 'Pending, then paid', value: SSE_EXAMPLE } },
          'text/event-stream',
        ),
      },
      ...b.problems('GET /payments/{id}/events', ['payment_not_found', 'store_unavailable']),
    },
  });
  for (const [i, data] of [paymentExample, succeededExample].entries()) {
    b.examples.push({ where: `GET /payments/{id}/events 200 (event ${i + 1} data)`, schema: payment, value: data });
  }

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
        content: b.content('POST /payments/{id}/cancel 200', payment, {
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

function registerWebhooks(b: Builder) {
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

function registerBankAndOps(b: Builder) {
  b.route({
    method: 'post',
    path: '/ciba/notify',
    tags: ['Bank'],
    summary: 'CIBA ping notification',
    description:
      'The bank calls this in ping mode when a result is ready (CIBA Core §10.2). Answers `204` and fetches the token at once; ' +
      'the token itself always comes from the token endpoint.',
    security: [{ notificationToken: [] }],
    request: {
      body: {
        required: true,
        content: b.content('POST /ciba/notify request', documented(notifyRequestSchema).openapi('CibaNotification'), {
          ping: { summary: 'A result is ready', value: { auth_req_id: '1c266114-a1be-4252-8ad1-04986c5b9ac1' } },
        }),
      },
    },
    responses: {
      204: { description: 'Noted; the token request follows immediately.' },
      ...b.problems('POST /ciba/notify', [
        'invalid_request',
        'malformed_json',
        'body_too_large',
        'invalid_notification_token',
        'store_unavailable',
      ]),
    },
  });

  b.route({
    method: 'get',
    path: '/livez',
    tags: ['Operations'],
    summary: 'Liveness',
    responses: {
      200: {
        description: 'The process is alive.',
        content: b.content('GET /livez 200', livezResponseSchema, {
          ok: { summary: 'Alive', value: { status: 'ok' } },
        }),
      },
      ...b.problems('GET /livez', []),
    },
  });
  b.route({
    method: 'get',
    path: '/readyz',
    tags: ['Operations'],
    summary: 'Readiness',
    description: 'Fails while Redis or the bank discovery is unavailable, and during shutdown.',
    responses: {
      200: {
        description: 'Ready.',
        content: b.content('GET /readyz 200', readyzResponseSchema, {
          ready: {
            summary: 'Ready',
            value: { status: 'ready', checks: { accepting_work: true, redis: true, bank_discovery: true } },
          },
        }),
      },
      503: {
        description: 'Not ready.',
        content: b.content('GET /readyz 503', readyzResponseSchema, {
          bankDown: {
            summary: 'Discovery failing',
            value: { status: 'not_ready', checks: { accepting_work: true, redis: true, bank_discovery: false } },
          },
        }),
      },
      ...b.problems('GET /readyz', []),
    },
  });
  b.route({
    method: 'get',
    path: '/metrics',
    tags: ['Operations'],
    summary: 'Prometheus metrics',
    description: 'HTTP, CIBA outcomes, poll lateness, queue depth and webhook deliveries (prom-client).',
    responses: {
      200: {
        description: 'Prometheus text exposition format.',
        content: b.content(
          'GET /metrics 200',
          z.string(),
          {
            sample: {
              summary: 'Two lines of it',
              value: '# TYPE checkouts_total counter\ncheckouts_total{outcome="accepted"} 42\n',
            },
          },
          'text/plain',
        ),
      },
      ...b.problems('GET /metrics', []),
    },
  });
}

function registerDocs(b: Builder) {
  b.route({
    method: 'get',
    path: '/openapi.json',
    tags: ['Documentation'],
    summary: 'This OpenAPI 3.1 document',
    responses: {
      200: {
        description: 'The document.',
        content: {
          'application/json': {
            schema: z
              .object({ openapi: z.string(), info: z.object({ title: z.string(), version: z.string() }) })
              .loose(),
          },
        },
      },
    },
  });
  b.route({
    method: 'get',
    path: '/docs',
    tags: ['Documentation'],
    summary: 'Readable API reference',
    description: 'This document rendered as one HTML page.',
    responses: { 200: { description: 'HTML.', content: { 'text/html': { schema: z.string() } } } },
  });
}

let cached: OpenApiBuild | null = null;

/** Builds the document once; later calls return the same object. */
export function buildOpenApi(): OpenApiBuild {
  if (cached) return cached;
  DOCUMENTED_ROUTES.length = 0;
  const b = createBuilder();
  registerSecurity(b);
  b.registry.register('Problem', problemSchema);
  registerCheckout(b);
  registerPayments(b);
  registerWebhooks(b);
  registerBankAndOps(b);
  registerDocs(b);
  const document = new OpenApiGeneratorV31(b.registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'ciba-checkout',
      version: '0.1.0',
      description:
        "A shop's payment service: checkouts paid by bank transfer, with the customer approving in their bank app " +
        '(OpenID Connect CIBA). All errors are `application/problem+json` with a stable `code`. Amounts are integers in ' +
        'minor units; currencies lower-case ISO 4217. Bodies over 16 KiB are refused; unknown fields are rejected. ' +
        'The demo storefront is served at `/`.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'Storefront', description: 'Called by the shop page in the browser.' },
      { name: 'Payments', description: 'Following and canceling a payment.' },
      { name: 'Webhooks', description: 'Standard Webhooks deliveries to the shop backend.' },
      { name: 'Bank', description: 'Called by the bank.' },
      { name: 'Operations', description: 'Health and metrics.' },
      { name: 'Documentation', description: 'This reference.' },
    ],
  });
  cached = { document, examples: b.examples };
  return cached;
}
