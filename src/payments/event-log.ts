import {
  FAILURE_CODES,
  PAYMENT_STATUSES,
  toPaymentView,
  type FailureCode,
  type PaymentRecord,
  type PaymentStatus,
  type PaymentView,
} from './payment.js';
import { webhookEventType } from './state-machine-rules.js';
import { BASE32 } from '../crypto/random-ids.js';

/**
 * A payment's events, as the transition script appends them to the payment's event log: one short
 * field per status change in the payment's own hash, `e<position>` (1-based) =
 * `<status letter><timestamp ms, base 36>[ <failureCode>]`, e.g. `pmien8y8k`. At most 40 bytes, so a
 * small payment hash stays in Redis' compact listpack encoding (values up to 64 bytes).
 *
 * The event id (the webhook-id, `msg_` + 24 base32 characters) is not stored: it is the payment id's
 * 20 characters and the position in 4 (`eventIdOf`), unique per event and the same on every retry
 * and resend. Entries written before (issue 12.4) hold a random id first and the status, failure
 * and time apart, `<id> <letter or status name> <failureCode|-> <timestamp>`: they are read as
 * they are, with their own id.
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
export type FixedAtCreation =
  'id' | 'amount' | 'currency' | 'items' | 'bindingMessage' | 'expiresAt' | 'createdAt' | 'metadata';

const STATUSES: ReadonlySet<string> = new Set(PAYMENT_STATUSES);
/**
 * One letter per status in an entry (the log is kept for every payment during the retention), and
 * in the payment hash's `status` field (store/payment-hash.ts).
 */
export const STATUS_LETTER = {
  pending_authorization: 'p',
  authorized: 'a',
  processing: 'r',
  succeeded: 's',
  failed: 'f',
  canceled: 'c',
} as const satisfies Record<PaymentStatus, string>;
const STATUS_OF_LETTER: ReadonlyMap<string, PaymentStatus> = new Map(
  PAYMENT_STATUSES.map((s) => [STATUS_LETTER[s], s] as const),
);
const FAILURES: ReadonlySet<string> = new Set(FAILURE_CODES);

/** A status as stored: its letter, or (written before issue 12.4) its name; undefined when neither. */
export function statusOfStored(stored: string): PaymentStatus | undefined {
  const status = STATUS_OF_LETTER.get(stored) ?? stored;
  return STATUSES.has(status) ? (status as PaymentStatus) : undefined;
}

/** The hash field of the event at `position` (1-based). */
export function eventField(position: number): string {
  return `e${position}`;
}

/** Most events a log may hold with derived ids: four base32 characters of position. */
const POSITION_CHARS = 4;

/** The event id of the event at `position` (1-based) of a payment's log: `msg_<id chars><position>`. */
export function eventIdOf(paymentId: string, position: number): string {
  let digits = '';
  for (let n = position, i = 0; i < POSITION_CHARS; i++, n = Math.floor(n / 32))
    digits = BASE32.charAt(n % 32) + digits;
  return `msg_${paymentId.replace(/^pay_/, '')}${digits}`;
}

export function encodeEventEntry(e: Omit<PaymentEvent, 'eventId'>): string {
  return `${STATUS_LETTER[e.status]}${e.at.toString(36)}${e.failureCode ? ` ${e.failureCode}` : ''}`;
}

/** An entry without its id (written since issue 12.4). */
function decodeShortEntry(entry: string, eventId: string): PaymentEvent | null {
  const m = /^([a-z])([0-9a-z]{1,11})(?: ([a-z_]{1,40}))?$/.exec(entry);
  const status = m?.[1] ? STATUS_OF_LETTER.get(m[1]) : undefined;
  if (!m?.[2] || !status) return null;
  const failure = m[3] ?? null;
  if (failure !== null && !FAILURES.has(failure)) return null;
  return { eventId, status, failureCode: failure as FailureCode | null, at: parseInt(m[2], 36) };
}

/** The event of entry `entry` at `position` of payment `paymentId`'s log; null when it cannot be read. */
export function decodeEventEntry(entry: string, paymentId: string, position: number): PaymentEvent | null {
  const parts = entry.split(' ');
  if (parts.length <= 2) return decodeShortEntry(entry, eventIdOf(paymentId, position));
  const [id, written, failure, at] = parts;
  const status = written === undefined ? undefined : statusOfStored(written);
  if (!id || !status || !failure || !at || !/^[a-z2-7]{1,64}$/.test(id)) return null;
  if (failure !== '-' && !FAILURES.has(failure)) return null;
  if (!/^[0-9a-z]{1,11}$/.test(at)) return null;
  const ms = parseInt(at, 36);
  return {
    eventId: `msg_${id}`,
    status,
    failureCode: failure === '-' ? null : (failure as FailureCode),
    at: ms,
  };
}

/** The events of payment `paymentId`'s hash (HGETALL), position i + 1 at index i (null if an entry cannot be read). */
export function decodeEventLog(hash: Record<string, string>, paymentId: string): (PaymentEvent | null)[] {
  const out: (PaymentEvent | null)[] = [];
  for (let position = 1; hash[eventField(position)] !== undefined; position++)
    out.push(decodeEventEntry(hash[eventField(position)] ?? '', paymentId, position));
  return out;
}

/** The payment as it was right after this event. */
export function eventView(record: PaymentRecord, e: PaymentEvent): PaymentView {
  return toPaymentView({ ...record, status: e.status, failureCode: e.failureCode, updatedAt: e.at });
}

/** The event type of any status, `payment.<status>`: SSE names every event so, `processing` included. */
export function paymentEventType(status: PaymentStatus): string {
  return webhookEventType(status) ?? `payment.${status}`;
}

/** The Standard Webhooks body `{type, timestamp, data}`, byte-identical on every call for the same event. */
export function eventBody(record: PaymentRecord, e: PaymentEvent): { type: string; json: string } {
  const type = paymentEventType(e.status);
  return { type, json: JSON.stringify({ type, timestamp: new Date(e.at).toISOString(), data: eventView(record, e) }) };
}
