import { z } from 'zod';

/**
 * The RFC 9396 `payment_initiation` authorization details type the sandbox accepts (the shape of
 * DESIGN.md and src/ciba/types.ts PaymentInitiationDetail). RFC 9396 §2 leaves the fields of a
 * type to the AS; unknown fields are rejected so a typo in the shop's request is not silently ignored.
 */
export const paymentInitiationSchema = z
  .object({
    type: z.literal('payment_initiation'),
    instructedAmount: z
      .object({
        currency: z.string().regex(/^[A-Z]{3}$/),
        amount: z.string().regex(/^(0|[1-9][0-9]{0,11})(\.[0-9]{1,2})?$/),
      })
      .strict(),
    creditorName: z.string().min(1).max(70),
    creditorAccount: z.object({ iban: z.string().regex(/^[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}$/) }).strict(),
    remittanceInformationUnstructured: z.string().max(140).optional(),
  })
  .strict();

export type PaymentInitiation = z.infer<typeof paymentInitiationSchema>;

/** Amounts compare as numbers of cents, so "12.9" and "12.90" are the same amount. */
export function toMinorUnits(amount: string): number {
  const [whole = '0', fraction = ''] = amount.split('.');
  return Number(whole) * 100 + Number(fraction.padEnd(2, '0'));
}
