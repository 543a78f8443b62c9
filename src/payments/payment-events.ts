import { FAILURE_CODES, PAYMENT_STATUSES, toPaymentView, type FailureCode, type PaymentRecord, type PaymentStatus, type PaymentView } from './payment.js';
import { eventTypeFor } from './state-machine-rules.js';

/**
 * A payment's events, as the transition script appends them to the payment's event log (a Redis
 * list, one short entry per status change): `<eventId> <status> <failureCode|-> <timestampMs>`.
 *
 * The event body is not stored: every field of the payment view but `status`, `failure_code` and
 * `updated_at` is fixed when the payment is created (amount, currency, items, binding message,
 * expires_at, created_at, metadata), so the body is rebuilt from the payment record plus the
 * entry, the same bytes every time — for SSE and for every webhook retry alike.
 */
export interface PaymentEvent {
  /** The webhook-id (`msg_…`). */
  eventId: string;
  status: PaymentStatus;
  failureCode: FailureCode | null;
  /** When the status changed (ms); the body's `timestamp` and `data.updated_at`. */
  at: number;
}

/**
 * Payment fields that never change after creation. Everything in the payment view is one of these
 * or status / failure code / updated_at, which each event carries: the invariant that lets the
 * event body be rebuilt. Updates and transitions are typed to leave them alone.
 */
export type FixedAtCreation = 'id' | 'amount' | 'currency' | 'items' | 'bindingMessage' | 'expiresAt' | 'createdAt' | 'metadata';

const STATUSES: ReadonlySet<string> = new Set(PAYMENT_STATUSES);
const FAILURES: ReadonlySet<string> = new Set(FAILURE_CODES);

export function encodeEventEntry(e: PaymentEvent): string {
  return `${e.eventId} ${e.status} ${e.failureCode ?? '-'} ${e.at}`;
}

export function decodeEventEntry(entry: string): PaymentEvent | null {
  const [eventId, status, failure, at] = entry.split(' ');
  if (!eventId || !status || !failure || !at || !STATUSES.has(status)) return null;
  if (failure !== '-' && !FAILURES.has(failure)) return null;
  const ms = Number(at);
  if (!Number.isSafeInteger(ms)) return null;
  return { eventId, status: status as PaymentStatus, failureCode: failure === '-' ? null : (failure as FailureCode), at: ms };
}

/** The payment as it was right after this event. */
export function eventView(record: PaymentRecord, e: PaymentEvent): PaymentView {
  return toPaymentView({ ...record, status: e.status, failureCode: e.failureCode, updatedAt: e.at });
}

/** `payment.<status>` (also for `processing`, which is announced on SSE only). */
export function eventTypeOf(status: PaymentStatus): string {
  return eventTypeFor(status) ?? `payment.${status}`;
}

/** The Standard Webhooks body `{type, timestamp, data}`, byte-identical on every call for the same event. */
export function eventBody(record: PaymentRecord, e: PaymentEvent): { type: string; json: string } {
  const type = eventTypeOf(e.status);
  return { type, json: JSON.stringify({ type, timestamp: new Date(e.at).toISOString(), data: eventView(record, e) }) };
}
