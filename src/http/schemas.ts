import { z } from 'zod';
import { FAILURE_CODES, PAYMENT_STATUSES } from '../payments/payment.js';

/** Request and response shapes of the shop-facing API; the OpenAPI document is generated from these. */

const metadataKeySchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,40}$/, 'keys are 1–40 letters, digits, dot, dash or underscore');

export const checkoutRequestSchema = z.strictObject({
  items: z
    .array(
      z.strictObject({
        sku: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1–64 letters, digits, dot, dash or underscore'),
        quantity: z.number().int().min(1).max(100),
      }),
    )
    .min(1)
    .max(50),
  /** The customer's identifier at the bank (CIBA login_hint). */
  login_hint: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/, 'must be printable ASCII without leading or trailing spaces'),
  callback_url: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .optional(),
  metadata: z
    .record(metadataKeySchema, z.string().max(500))
    .refine((m) => Object.keys(m).length <= 20, 'at most 20 keys')
    .optional(),
});
export type CheckoutRequest = z.infer<typeof checkoutRequestSchema>;

export const paymentIdSchema = z.string().regex(/^pay_[a-z2-7]{20}$/);

export const paymentSchema = z.object({
  id: z.string(),
  status: z.enum(PAYMENT_STATUSES),
  amount: z.number().int(),
  currency: z.string(),
  items: z.array(z.object({ sku: z.string(), quantity: z.number().int(), unit_amount: z.number().int() })),
  binding_message: z.string(),
  expires_at: z.string(),
  failure_code: z.enum(FAILURE_CODES).nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  metadata: z.record(z.string(), z.string()),
});

export const checkoutResponseSchema = paymentSchema.extend({ client_secret: z.string() });

export const notifyRequestSchema = z.strictObject({ auth_req_id: z.string().min(1).max(1024) });

export const idempotencyKeySchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII');

/** A point in time in a query: unix seconds, as Stripe takes `created[gte]`, or an RFC 3339 date-time. */
const instantSchema = z.union([
  z
    .string()
    .regex(/^\d{1,11}$/)
    .transform((s) => Number(s) * 1000),
  z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)),
]);

/** GET /payments: the query after `groupBracketParams` (`created[gte]=…` → `created: {gte: …}`). */
export const listPaymentsQuerySchema = z
  .strictObject({
    limit: z
      .string()
      .regex(/^\d{1,3}$/, 'must be a whole number from 1 to 100')
      .transform(Number)
      .pipe(z.number().min(1).max(100))
      .default(10),
    starting_after: paymentIdSchema.optional(),
    ending_before: paymentIdSchema.optional(),
    status: z.enum(PAYMENT_STATUSES).optional(),
    created: z.strictObject({ gte: instantSchema.optional(), lt: instantSchema.optional() }).optional(),
    metadata: z
      .record(metadataKeySchema, z.string().max(500))
      .refine((m) => Object.keys(m).length <= 5, 'at most 5 metadata filters')
      .optional(),
  })
  .refine((q) => !(q.starting_after && q.ending_before), {
    message: 'give starting_after or ending_before, not both',
    path: ['ending_before'],
  });
export type ListPaymentsQueryParams = z.infer<typeof listPaymentsQuerySchema>;

/**
 * Query keys in bracket form (`created[gte]`, `metadata[order_id]`, OpenAPI `style: deepObject`, as
 * Stripe and openapi-fetch write them) grouped into objects; other keys pass unchanged. A key with more
 * brackets is left as it is, so the strict schema refuses it.
 */
export function groupBracketParams(query: Record<string, unknown>): Record<string, unknown> {
  const flat: [string, unknown][] = [];
  const groups = new Map<string, [string, unknown][]>();
  for (const [key, value] of Object.entries(query)) {
    const m = /^([a-z_]+)\[([^[\]]+)\]$/.exec(key);
    if (!m?.[1] || !m[2]) flat.push([key, value]);
    else groups.set(m[1], [...(groups.get(m[1]) ?? []), [m[2], value]]);
  }
  // Object.fromEntries defines own properties, so a `__proto__` key is data, not a prototype.
  for (const [name, entries] of groups) flat.push([name, Object.fromEntries(entries)]);
  return Object.fromEntries(flat);
}
