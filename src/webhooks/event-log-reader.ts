import { decodeEventLog, eventView, type PaymentEvent } from '../payments/event-log.js';
import type { PaymentRecord, PaymentView } from '../payments/payment.js';
import type { Keys } from '../store/keys.js';
import { decodeRecord } from '../store/payment-store.js';
import type { RedisClient } from '../store/redis.js';

/**
 * Reads of a payment's event log (fields `e<n>` of the payment hash, written by transition-6.lua;
 * entry format and body rebuild in src/payments/event-log.ts), for SSE, the webhook sender,
 * resends and the deliveries list. One HGETALL reads the payment and its events together.
 */

/** Where event logs are read from (the payment hashes). */
export interface EventLogSource {
  redis: RedisClient;
  keys: Keys;
}

/** One event with its position, as SSE sends it. */
export interface PaymentEventEntry extends PaymentEvent {
  /** 1-based position in the payment's event log: the SSE `id:`, resumed from with Last-Event-ID. */
  position: number;
  /** The payment view at that status (the webhook body's `data`). */
  data: PaymentView;
}

/** An SSE event id: the position of the last event the client saw. */
export const EVENT_POSITION_PATTERN = /^\d{1,9}$/;

export interface EventLog {
  record: PaymentRecord;
  /** Index i holds the event at position i + 1 (null if the entry cannot be read). */
  events: (PaymentEvent | null)[];
}

/** The payment with its whole event log; null once the payment is gone (retention). */
export async function loadEventLog(deps: EventLogSource, paymentId: string): Promise<EventLog | null> {
  const hash = await deps.redis.hgetall(deps.keys.payment(paymentId));
  const record = decodeRecord(hash, paymentId);
  return record ? { record, events: decodeEventLog(hash, paymentId) } : null;
}

/** The payment's events after position `after` (0 = from the start), oldest first. */
export async function readPaymentEvents(
  deps: EventLogSource,
  paymentId: string,
  after: number,
): Promise<PaymentEventEntry[]> {
  const log = await loadEventLog(deps, paymentId);
  if (!log) return [];
  const out: PaymentEventEntry[] = [];
  log.events.forEach((e, i) => {
    if (e && i + 1 > after) out.push({ ...e, position: i + 1, data: eventView(log.record, e) });
  });
  return out;
}

/** The position of event `eventId` in the payment's log; null when the log no longer holds it (retention). */
export async function findEventPosition(
  deps: EventLogSource,
  paymentId: string,
  eventId: string,
): Promise<number | null> {
  const log = await loadEventLog(deps, paymentId);
  const index = log ? log.events.findIndex((e) => e?.eventId === eventId) : -1;
  return index >= 0 ? index + 1 : null;
}
