import {
  OpenAPIRegistry,
  type OpenApiGeneratorV31,
  extendZodWithOpenApi,
  type ResponseConfig,
  type RouteConfig,
} from '@asteasolutions/zod-to-openapi';
import { z, type ZodType } from 'zod';
import {
  PROBLEMS,
  PROBLEM_CODES,
  PROBLEM_TYPE_BASE,
  statusTitle,
  type ProblemCode,
  type ProblemInfo,
} from '../problem-codes.js';
import { paymentIdSchema, paymentSchema } from './schemas.js';

/**
 * The shared parts of the OpenAPI 3.1 document: the builder each routes file documents its own
 * paths with (see `document…Routes` beside each router), the Problem schema, the security schemes
 * and the payment examples several routes show. openapi.ts assembles the document. Every example
 * is also checked against its schema by test/integration/openapi.test.ts, so the document cannot
 * drift from what the code accepts.
 */
extendZodWithOpenApi(z);

/** schemas.ts builds its schemas before this module extends zod; a clone made now has `.openapi`. */
export function documented<T extends ZodType>(schema: T): T {
  return schema.clone();
}

const problemSchema = z
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

export const paymentDoc = documented(paymentSchema).openapi('Payment', {
  description: 'Amounts in minor units, currency lower-case ISO 4217. Never shows tokens or auth_req_id.',
});

// ---- examples -------------------------------------------------------------------------------

export const PAYMENT_ID = 'pay_3kq9w2mz7x4r5t6y7u2a';
export const paymentExample = {
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
export const succeededExample = {
  ...paymentExample,
  status: 'succeeded',
  updated_at: '2026-11-25T14:00:41.000Z',
} as const;
export const failedExample = {
  ...paymentExample,
  status: 'failed',
  failure_code: 'access_denied',
  updated_at: '2026-11-25T14:00:30.000Z',
} as const;
export const canceledExample = {
  ...paymentExample,
  status: 'canceled',
  updated_at: '2026-11-25T14:00:20.000Z',
} as const;
export const CLIENT_SECRET = `${PAYMENT_ID}_secret_Xq2v9LrT0kYb3NwZ8pFh4s`;

function problemExample(code: ProblemCode): z.input<typeof problemSchema> {
  const info: ProblemInfo = PROBLEMS[code];
  return {
    type: `${PROBLEM_TYPE_BASE}${code}`,
    title: statusTitle(info.status),
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

export interface Example {
  summary: string;
  value: unknown;
}

/** An example together with the zod schema it must satisfy (for the test that keeps them honest). */
export interface RecordedExample {
  where: string;
  schema: ZodType;
  value: unknown;
}

/**
 * What each routes file documents its operations with: `route` registers one operation, `content`
 * records its examples, `problems` lists its error answers (every operation has at least
 * `internal_error`), `registry` takes further components.
 */
export interface OpenApiBuilder {
  registry: OpenAPIRegistry;
  examples: RecordedExample[];
  /** Documented routes as `METHOD /express/:path`, for the test that compares them with the app's routes. */
  routes: string[];
  content(
    where: string,
    schema: ZodType,
    byName: Record<string, Example>,
    mediaType?: string,
  ): Record<string, { schema: ZodType; examples: Record<string, Example> }>;
  problems(where: string, codes: ProblemCode[]): Record<string, ResponseConfig>;
  route(config: RouteConfig): void;
}

/** The assembled document (openapi.ts) with its examples and documented routes. */
export interface OpenApiBuild {
  document: ReturnType<OpenApiGeneratorV31['generateDocument']>;
  examples: RecordedExample[];
  /** Documented routes as `METHOD /express/:path`, for the test that compares them with the app's routes. */
  routes: readonly string[];
}

/** A routes file's contribution to the document, declared beside its router. */
export type RouteDocs = (b: OpenApiBuilder) => void;

export function createOpenApiBuilder(): OpenApiBuilder {
  const registry = new OpenAPIRegistry();
  const examples: RecordedExample[] = [];
  const routes: string[] = [];

  const content: OpenApiBuilder['content'] = (where, schema, byName, mediaType = 'application/json') => {
    for (const [name, ex] of Object.entries(byName))
      examples.push({ where: `${where} (${name})`, schema, value: ex.value });
    return { [mediaType]: { schema, examples: byName } };
  };

  const problems: OpenApiBuilder['problems'] = (where, codes) => {
    const byStatus = new Map<number, ProblemCode[]>();
    for (const code of [...codes, 'internal_error' as const]) {
      const status = PROBLEMS[code].status;
      byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
    }
    const out: Record<string, ResponseConfig> = {};
    for (const [status, group] of byStatus) {
      const byName = Object.fromEntries(group.map((c) => [c, { summary: PROBLEMS[c].when, value: problemExample(c) }]));
      out[String(status)] = {
        description: `${statusTitle(status)}: ${group.map((c) => `\`${c}\``).join(', ')}`,
        ...(group.some((c) => 'retryAfter' in PROBLEMS[c]) ? { headers: retryAfterHeader } : {}),
        content: content(`${where} ${status}`, problemSchema, byName, 'application/problem+json'),
      };
    }
    return out;
  };

  const route: OpenApiBuilder['route'] = (config) => {
    routes.push(`${config.method.toUpperCase()} ${config.path.replace(/\{(\w+)\}/g, ':$1')}`);
    registry.registerPath(config);
  };

  registry.register('Problem', problemSchema);
  registerSecuritySchemes(registry);
  return { registry, examples, routes, content, problems, route };
}

const retryAfterHeader = z.object({
  'Retry-After': z.string().optional().openapi({ description: 'Seconds to wait before retrying.', example: '5' }),
});

function registerSecuritySchemes(registry: OpenAPIRegistry): void {
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
      'The same secret as a query parameter, accepted on `GET /payments/{id}/events` only, for `EventSource`, which ' +
      'cannot set headers (elsewhere a secret in the query is ignored: RFC 6750 §5.3). Request logs drop query strings.',
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

/** `Bearer` is matched case-insensitively on every route (RFC 9110 §11.1). */
export const paymentAuth = [{ clientSecret: [] }, { shopKey: [] }];
/** The event stream alone also takes the client secret in the query (EventSource sends no headers). */
export const eventStreamAuth = [...paymentAuth, { clientSecretQuery: [] }];
export const idParams = z.object({
  id: documented(paymentIdSchema).openapi({ param: { description: 'Payment id' }, example: PAYMENT_ID }),
});
