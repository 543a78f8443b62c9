import { decodeEventEntry, eventView, type PaymentEvent } from '../payments/payment-events.js';
import type { PaymentRecord, PaymentView } from '../payments/payment.js';
import type { Keys } from '../store/keys.js';
import { decodeRecord } from '../store/payment-store.js';
import type { RedisClient } from '../store/redis.js';

/**
 * Reads of a payment's event log (written by transition-4.lua; entry format and body rebuild in
 * src/payments/payment-events.ts), for SSE, the webhook sender and the deliveries list.
 */

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

/** The payment and its events from position `after + 1` on, read in one MULTI (a consistent snapshot). */
async function readLog(deps: { redis: RedisClient; keys: Keys }, paymentId: string, after: number): Promise<EventLog | null> {
  const results = await deps.redis
    .multi()
    .hgetall(deps.keys.payment(paymentId))
    .lrange(deps.keys.paymentEvents(paymentId), after, -1)
    .exec();
  const [hashResult, listResult] = results ?? [];
  if (hashResult?.[0]) throw hashResult[0];
  if (listResult?.[0]) throw listResult[0];
  const record = decodeRecord((hashResult?.[1] ?? {}) as Record<string, string>);
  if (!record) return null;
  return { record, events: ((listResult?.[1] ?? []) as string[]).map(decodeEventEntry) };
}

/** The whole event log of a payment with its record; null once the payment is gone (retention). */
export function loadEventLog(deps: { redis: RedisClient; keys: Keys }, paymentId: string): Promise<EventLog | null> {
  return readLog(deps, paymentId, 0);
}

/** The payment's events after position `after` (0 = from the start), oldest first. */
export async function readPaymentEvents(
  deps: { redis: RedisClient; keys: Keys },
  paymentId: string,
  after: number,
): Promise<PaymentEventEntry[]> {
  const log = await readLog(deps, paymentId, after);
  if (!log) return [];
  const out: PaymentEventEntry[] = [];
  log.events.forEach((e, i) => {
    if (e) out.push({ ...e, position: after + i + 1, data: eventView(log.record, e) });
  });
  return out;
}

/** The position of event `eventId` in the payment's log; null when the log no longer holds it (retention). */
export async function findEventPosition(deps: { redis: RedisClient; keys: Keys }, paymentId: string, eventId: string): Promise<number | null> {
  const log = await loadEventLog(deps, paymentId);
  const index = log ? log.events.findIndex((e) => e?.eventId === eventId) : -1;
  return index >= 0 ? index + 1 : null;
}
