import { z } from 'zod';
import { FAILURE_CODES, PAYMENT_STATUSES } from '../payments/payment.js';

/** Request and response shapes of the shop-facing API; the OpenAPI document is generated from these. */

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
    .record(
      z.string().regex(/^[A-Za-z0-9_.-]{1,40}$/, 'keys are 1–40 letters, digits, dot, dash or underscore'),
      z.string().max(500),
    )
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
