import type { Keys } from '../store/keys.js';
import type { RedisClient } from '../store/redis.js';

/** One entry of a payment's event stream (written by transition-5.lua), as SSE sends it. */
export interface PaymentEventEntry {
  /** The stream entry id, used as the SSE `id:` and resumed from with Last-Event-ID. */
  streamId: string;
  eventId: string;
  status: string;
  /** The payment view at that status (the webhook body's `data`). */
  data: unknown;
}

export const STREAM_ID_PATTERN = /^\d{1,20}-\d{1,20}$/;

function toEntry(streamId: string, fields: string[]): PaymentEventEntry | null {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i] ?? '', fields[i + 1] ?? '');
  const body = map.get('event');
  const status = map.get('status');
  if (!body || !status) return null;
  const parsed = JSON.parse(body) as { data?: unknown };
  return { streamId, eventId: map.get('event_id') ?? '', status, data: parsed.data ?? null };
}

/** The payment's events after `afterId` (exclusive; null = from the start), oldest first. */
export async function readPaymentEvents(
  deps: { redis: RedisClient; keys: Keys },
  paymentId: string,
  afterId: string | null,
): Promise<PaymentEventEntry[]> {
  const start = afterId ? `(${afterId}` : '-';
  const raw = await deps.redis.xrange(deps.keys.paymentEvents(paymentId), start, '+', 'COUNT', 1000);
  return raw.map(([id, fields]) => toEntry(id, fields)).filter((e): e is PaymentEventEntry => e !== null);
}
