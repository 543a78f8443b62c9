import type { NextStep } from '../payments/ports.js';
import type { Handler } from './worker-loop.js';

/**
 * `submit:<payment id>`: the bank submission of an authorized payment, and its reconciliation when
 * the outcome is unknown (payments/submit-payment.ts, payments/reconcile-payment.ts).
 */
export function createPaymentSubmitter(submitPayment: (paymentId: string) => Promise<NextStep>): Handler {
  return (paymentId) => submitPayment(paymentId);
}
