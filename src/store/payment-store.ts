import { currentTraceparent } from '../tracing.js';
import type { Keys } from './keys.js';
import { createPaymentListIndex } from './payment-list-index.js';
import type { RedisClient } from './redis.js';
import type { FailureCode, LineItem, PaymentRecord, PaymentStatus } from '../payments/payment.js';
import type { PaymentStore } from '../payments/ports.js';

export type { PaymentStore, PollFields, TransitionRequest, TransitionResult } from '../payments/ports.js';

/** Field names of the payment hash. Short, because tens of thousands of pending payments live here. */
const F = {
  id: 'id',
  status: 'status',
  amount: 'amount',
  currency: 'currency',
  items: 'items',
  bindingMessage: 'binding',
  expiresAt: 'expires_at',
  failureCode: 'failure',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  metadata: 'metadata',
  secretHash: 'secret',
  authReqId: 'arid',
  intervalMs: 'interval',
  callbackUrl: 'callback',
  sealedAccessToken: 'token',
  accessTokenExpiresAt: 'token_exp',
  bankPaymentId: 'bank_id',
  bankCalledAt: 'bank_at',
  reconcileSince: 'reconcile',
  heldToken: 'held',
  attempts: 'attempts',
} as const satisfies Record<keyof PaymentRecord, string>;

export type PaymentField = keyof PaymentRecord;

/** Not part of the record: written at creation while tracing is on, read only by the worker's spans. */
const TRACE_FIELD = 'trace';

function encode(value: PaymentRecord[PaymentField]): string | null {
  if (value === null) return null;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Partial record → hash fields to set and fields to delete (null values). */
export function encodeFields(fields: Partial<PaymentRecord>): { set: Record<string, string>; drop: string[] } {
  const set: Record<string, string> = {};
  const drop: string[] = [];
  for (const [name, value] of Object.entries(fields) as [PaymentField, PaymentRecord[PaymentField]][]) {
    const encoded = encode(value);
    if (encoded === null) drop.push(F[name]);
    else set[F[name]] = encoded;
  }
  return { set, drop };
}

function num(value: string | undefined): number | null {
  return value === undefined ? null : Number(value);
}

export function decodeRecord(h: Record<string, string>): PaymentRecord | null {
  const id = h[F.id];
  const status = h[F.status];
  if (!id || !status) return null;
  return {
    id,
    status: status as PaymentStatus,
    amount: Number(h[F.amount]),
    currency: h[F.currency] ?? '',
    items: JSON.parse(h[F.items] ?? '[]') as LineItem[],
    bindingMessage: h[F.bindingMessage] ?? '',
    expiresAt: Number(h[F.expiresAt]),
    failureCode: (h[F.failureCode] ?? null) as FailureCode | null,
    createdAt: Number(h[F.createdAt]),
    updatedAt: Number(h[F.updatedAt]),
    metadata: JSON.parse(h[F.metadata] ?? '{}') as Record<string, string>,
    secretHash: h[F.secretHash] ?? '',
    authReqId: h[F.authReqId] ?? null,
    intervalMs: Number(h[F.intervalMs] ?? 5000),
    callbackUrl: h[F.callbackUrl] ?? null,
    sealedAccessToken: h[F.sealedAccessToken] ?? null,
    accessTokenExpiresAt: num(h[F.accessTokenExpiresAt]),
    bankPaymentId: h[F.bankPaymentId] ?? null,
    bankCalledAt: num(h[F.bankCalledAt]),
    reconcileSince: num(h[F.reconcileSince]),
    heldToken: h[F.heldToken] ?? null,
    attempts: Number(h[F.attempts] ?? 0),
  };
}

export function createPaymentStore(deps: { redis: RedisClient; keys: Keys; retentionSeconds: number }): PaymentStore {
  const { redis, keys, retentionSeconds } = deps;
  const list = createPaymentListIndex(deps);
  return {
    async get(id) {
      return decodeRecord(await redis.hgetall(keys.payment(id)));
    },
    async getMany(ids) {
      return Promise.all(ids.map(async (id) => decodeRecord(await redis.hgetall(keys.payment(id)))));
    },
    async getPollFields(id) {
      const [status, arid, interval, expiresAt, attempts, amount, currency, held] = await redis.hmget(
        keys.payment(id),
        F.status,
        F.authReqId,
        F.intervalMs,
        F.expiresAt,
        F.attempts,
        F.amount,
        F.currency,
        F.heldToken,
      );
      return {
        status: (status ?? null) as PaymentStatus | null,
        authReqId: arid ?? null,
        intervalMs: Number(interval ?? 5000),
        expiresAt: Number(expiresAt ?? 0),
        attempts: Number(attempts ?? 0),
        amount: Number(amount ?? 0),
        currency: currency ?? '',
        heldToken: held ?? null,
      };
    },
    async update(id, fields) {
      const { set, drop } = encodeFields(fields);
      const tx = redis.multi();
      if (Object.keys(set).length > 0) tx.hset(keys.payment(id), set);
      if (drop.length > 0) tx.hdel(keys.payment(id), ...drop);
      await tx.exec();
    },
    async transition(r) {
      const { set, drop } = encodeFields({ ...r.fields, status: r.to, updatedAt: r.now });
      // Listed before it exists: a crash in between leaves an entry GET /payments skips, never a
      // payment the list misses. Not in the script: in Redis Cluster the list is in another slot.
      if (r.from === null) {
        await list.add(r.id, r.fields.createdAt ?? r.now, r.now);
        // The trace of the request creating it (POST /checkout); the worker's spans continue it.
        const traceparent = currentTraceparent();
        if (traceparent) set[TRACE_FIELD] = traceparent;
      }
      const code = await redis.transition(
        keys.payment(r.id),
        keys.due,
        keys.leases,
        r.from === null ? '-' : r.from.join(','),
        JSON.stringify(set),
        drop.join(','),
        r.event?.entry ?? '',
        r.event?.deliveries.join(',') ?? '',
        r.now,
        r.schedule?.member ?? '',
        r.schedule?.at ?? 0,
        r.unschedule.join(','),
        retentionSeconds,
        r.terminal ? '1' : '0',
        keys.changesChannel,
        r.id,
      );
      return code === 1 ? 'ok' : code === -1 ? 'not_found' : 'conflict';
    },
    async getTraceparent(id) {
      return redis.hget(keys.payment(id), TRACE_FIELD);
    },
  };
}
