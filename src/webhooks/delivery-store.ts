import type { Keys } from '../store/keys.js';
import type { RedisClient } from '../store/redis.js';
import { decodeEventLog } from '../payments/event-log.js';

/**
 * Delivery records: the state of one event to one target, kept in Redis for GET /webhooks/deliveries
 * and resends. Only the worker holding the item's lease writes a record, so read-modify-write is safe.
 */

export type DeliveryTarget = 'g' | 'c';
/** pending: more attempts planned; delivered: 2xx; gone: 410 or a known-gone URL; failed: given up. */
export type DeliveryState = 'pending' | 'delivered' | 'gone' | 'failed';

export interface DeliveryAttempt {
  at: number;
  status: number | null;
  error: string | null;
  durationMs: number;
}

export interface DeliveryRecord {
  id: string;
  eventId: string;
  eventType: string;
  paymentId: string;
  target: DeliveryTarget;
  url: string;
  state: DeliveryState;
  /** All attempts ever made, resends included. */
  attempts: number;
  /** Attempts since the delivery was (re)started: the position in the retry schedule. */
  roundAttempts: number;
  /** When the current round began: the retry schedule counts from here. */
  roundStartedAt: number;
  lastStatus: number | null;
  lastError: string | null;
  nextAttemptAt: number | null;
  createdAt: number;
  updatedAt: number;
  deliveredAt: number | null;
  /** The most recent attempts, oldest first (at most HISTORY_LIMIT). */
  history: DeliveryAttempt[];
}

const HISTORY_LIMIT = 20;

/** `dlv_<event>_<target>`: derived from the work item, so a retried item finds its own record. */
export function deliveryIdFor(eventId: string, target: DeliveryTarget): string {
  return `dlv_${eventId.replace(/^msg_/, '')}_${target}`;
}

export function parseDeliveryId(id: string): { eventId: string; target: DeliveryTarget } | null {
  const m = /^dlv_([a-z2-7]{1,64})_([gc])$/.exec(id);
  if (!m?.[1] || !m[2]) return null;
  return { eventId: `msg_${m[1]}`, target: m[2] as DeliveryTarget };
}

function numOrNull(v: string | undefined): number | null {
  return v === undefined || v === '' ? null : Number(v);
}

function decodeDelivery(hash: Record<string, string>): DeliveryRecord | null {
  if (!hash.id || !hash.event_id) return null;
  return {
    id: hash.id,
    eventId: hash.event_id,
    eventType: hash.event_type ?? '',
    paymentId: hash.payment_id ?? '',
    target: hash.target === 'c' ? 'c' : 'g',
    url: hash.url ?? '',
    state: (hash.state ?? 'pending') as DeliveryState,
    attempts: Number(hash.attempts ?? 0),
    roundAttempts: Number(hash.round_attempts ?? 0),
    roundStartedAt: Number(hash.round_started_at ?? hash.created_at ?? 0),
    lastStatus: numOrNull(hash.last_status),
    lastError: hash.last_error || null,
    nextAttemptAt: numOrNull(hash.next_attempt_at),
    createdAt: Number(hash.created_at ?? 0),
    updatedAt: Number(hash.updated_at ?? 0),
    deliveredAt: numOrNull(hash.delivered_at),
    history: JSON.parse(hash.history ?? '[]') as DeliveryAttempt[],
  };
}

function encodeDelivery(record: DeliveryRecord): Record<string, string> {
  return {
    id: record.id,
    event_id: record.eventId,
    event_type: record.eventType,
    payment_id: record.paymentId,
    target: record.target,
    url: record.url,
    state: record.state,
    attempts: String(record.attempts),
    round_attempts: String(record.roundAttempts),
    round_started_at: String(record.roundStartedAt),
    last_status: record.lastStatus === null ? '' : String(record.lastStatus),
    last_error: record.lastError ?? '',
    next_attempt_at: record.nextAttemptAt === null ? '' : String(record.nextAttemptAt),
    created_at: String(record.createdAt),
    updated_at: String(record.updatedAt),
    delivered_at: record.deliveredAt === null ? '' : String(record.deliveredAt),
    history: JSON.stringify(record.history.slice(-HISTORY_LIMIT)),
  };
}

/**
 * Records in the order of the payment's events (its event log), global target first: creation
 * times tie within a millisecond, the log order does not.
 */
function sortByEventOrder(
  records: DeliveryRecord[],
  payment: Record<string, string>,
  paymentId: string,
): DeliveryRecord[] {
  const position = new Map<string, number>();
  decodeEventLog(payment, paymentId).forEach((e, i) => {
    if (e) position.set(e.eventId, i);
  });
  const rank = (record: DeliveryRecord) =>
    (position.get(record.eventId) ?? Number.MAX_SAFE_INTEGER) * 2 + (record.target === 'g' ? 0 : 1);
  return [...records].sort((a, b) => rank(a) - rank(b) || a.createdAt - b.createdAt);
}

export interface DeliveryStore {
  get(id: string): Promise<DeliveryRecord | null>;
  /** Writes the record and lists it under its payment, both kept for the retention period. */
  save(record: DeliveryRecord): Promise<void>;
  listForPayment(paymentId: string): Promise<DeliveryRecord[]>;
  isGone(url: string): Promise<boolean>;
  markGone(url: string): Promise<void>;
}

export function createDeliveryStore(deps: { redis: RedisClient; keys: Keys; retentionSeconds: number }): DeliveryStore {
  const { redis, keys, retentionSeconds } = deps;
  return {
    async get(id) {
      return decodeDelivery(await redis.hgetall(keys.delivery(id)));
    },
    async save(record) {
      // Two transactions of one key each (the keys live in different slots on Redis Cluster). The
      // listing is written on every save, so one lost between the two is repaired by the next attempt.
      const listKey = keys.paymentDeliveries(record.paymentId);
      const key = keys.delivery(record.id);
      await Promise.all([
        redis.multi().hset(key, encodeDelivery(record)).expire(key, retentionSeconds).exec(),
        redis.multi().zadd(listKey, 'NX', record.createdAt, record.id).expire(listKey, retentionSeconds).exec(),
      ]);
    },
    async listForPayment(paymentId) {
      const [ids, payment] = await Promise.all([
        redis.zrange(keys.paymentDeliveries(paymentId), 0, 199),
        redis.hgetall(keys.payment(paymentId)),
      ]);
      const records = (await Promise.all(ids.map((id) => this.get(id)))).filter((r): r is DeliveryRecord => r !== null);
      return sortByEventOrder(records, payment, paymentId);
    },
    async isGone(url) {
      return (await redis.sismember(keys.goneTargets, url)) === 1;
    },
    async markGone(url) {
      await redis.sadd(keys.goneTargets, url);
    },
  };
}
