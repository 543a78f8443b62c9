import type { PaymentStatus } from './payment.js';

/**
 * Which status may follow which. `processing` can no longer be canceled: the bank may already be
 * moving the money. Terminal statuses have no way out.
 */
export const NEXT_STATUSES: Readonly<Record<PaymentStatus, readonly PaymentStatus[]>> = {
  pending_authorization: ['authorized', 'failed', 'canceled'],
  authorized: ['processing', 'failed', 'canceled'],
  processing: ['succeeded', 'failed'],
  succeeded: [],
  failed: [],
  canceled: [],
};

/** The statuses from which `to` may be reached. */
export function statusesLeadingTo(to: PaymentStatus): PaymentStatus[] {
  return (Object.keys(NEXT_STATUSES) as PaymentStatus[]).filter((from) => NEXT_STATUSES[from].includes(to));
}

export function canTransition(from: PaymentStatus, to: PaymentStatus): boolean {
  return NEXT_STATUSES[from].includes(to);
}

/** Webhook event types (DESIGN.md): every status but `processing` is announced. */
export type WebhookEventType = `payment.${Exclude<PaymentStatus, 'processing'>}`;

/** The webhook event a change to `status` sends; null for `processing`, which no webhook announces. */
export function webhookEventType(status: PaymentStatus): WebhookEventType | null {
  return status === 'processing' ? null : `payment.${status}`;
}
