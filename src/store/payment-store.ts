import { currentTraceparent } from '../tracing.js';
import type { Keys } from './keys.js';
import { createPaymentListIndex } from './payment-list-index.js';
import type { RedisClient } from './redis.js';
import type { FailureCode, LineItem, PaymentRecord, PaymentStatus } from '../payments/payment.js';
import type { PaymentStore } from '../payments/ports.js';

export type { PaymentStore, PollFields, TransitionRequest, TransitionResult } from '../payments/ports.js';

/** Field names of the payment hash. Short, because tens of thousands of pending payments live here. */
const FIELD = {
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
  bankConsentId: 'consent',
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
    if (encoded === null) drop.push(FIELD[name]);
    else set[FIELD[name]] = encoded;
  }
  return { set, drop };
}

function num(value: string | undefined): number | null {
  return value === undefined ? null : Number(value);
}

export function decodeRecord(hash: Record<string, string>): PaymentRecord | null {
  const id = hash[FIELD.id];
  const status = hash[FIELD.status];
  if (!id || !status) return null;
  return {
    id,
    status: status as PaymentStatus,
    amount: Number(hash[FIELD.amount]),
    currency: hash[FIELD.currency] ?? '',
    items: JSON.parse(hash[FIELD.items] ?? '[]') as LineItem[],
    bindingMessage: hash[FIELD.bindingMessage] ?? '',
    expiresAt: Number(hash[FIELD.expiresAt]),
    failureCode: (hash[FIELD.failureCode] ?? null) as FailureCode | null,
    createdAt: Number(hash[FIELD.createdAt]),
    updatedAt: Number(hash[FIELD.updatedAt]),
    metadata: JSON.parse(hash[FIELD.metadata] ?? '{}') as Record<string, string>,
    secretHash: hash[FIELD.secretHash] ?? '',
    authReqId: hash[FIELD.authReqId] ?? null,
    intervalMs: Number(hash[FIELD.intervalMs] ?? 5000),
    callbackUrl: hash[FIELD.callbackUrl] ?? null,
    sealedAccessToken: hash[FIELD.sealedAccessToken] ?? null,
    accessTokenExpiresAt: num(hash[FIELD.accessTokenExpiresAt]),
    bankPaymentId: hash[FIELD.bankPaymentId] ?? null,
    bankConsentId: hash[FIELD.bankConsentId] ?? null,
    bankCalledAt: num(hash[FIELD.bankCalledAt]),
    reconcileSince: num(hash[FIELD.reconcileSince]),
    heldToken: hash[FIELD.heldToken] ?? null,
    attempts: Number(hash[FIELD.attempts] ?? 0),
  };
}

/**
 * What asynchronous replication can lose, and how each money step is closed (issue 12.2).
 *
 * A Redis primary (Redis Cluster, or any primary with replicas) acknowledges a write before any
 * replica has it. If it dies in that window, the replica promoted in its place goes on without the
 * write: the service saw "OK", the store forgot. For most writes that only repeats work (a poll, a
 * lease, a webhook attempt). For the writes money depends on, `WAIT <replicas> <timeoutMs>` follows
 * in the same round trip on the payment's node (WAIT counts every earlier write of the replication
 * stream, so one acknowledged WAIT covers all the payment's earlier writes too):
 *
 * - `authorized` (the sealed access token, issued by the bank once) and `processing`: WAITed; if
 *   lost, the payment is polled again or submitted again from `authorized` — no money has moved yet,
 *   because of the next rule.
 * - `bank_at`, written just before each bank payment call (`recordBankCall`): the call is made only
 *   when `durability.replicas` acknowledged it. Else no call: the worker backs off, the payment stays
 *   `processing`, an alarm is counted. So a failover never forgets that a call may have reached the
 *   bank, and a later refusal is settled by a reconciliation lookup, never read as a first attempt.
 * - `succeeded`: WAITed; if lost, the payment is back in `processing` with `bank_at` set: the same
 *   Idempotency-Key gets the bank's first answer, or a refusal leads to the lookup — never a second
 *   transfer, never `failed` for money that moved.
 *
 * A transition whose WAIT fell short is still done (it cannot be taken back); it is reported through
 * `onUnreplicated`. With `replicas` 0 (one Redis without replicas) nothing is WAITed: there is no
 * replica to promote, and only the loss of the Redis itself (persistence) loses writes.
 */
const DURABLE_STATUSES: ReadonlySet<PaymentStatus> = new Set(['authorized', 'processing', 'succeeded']);

export interface Durability {
  /** Replicas that must acknowledge a money write (0: no WAIT, e.g. one Redis without replicas). */
  replicas: number;
  timeoutMs: number;
}

interface DurablePipeline {
  transition(...args: (string | number)[]): DurablePipeline;
  hset(key: string, field: string, value: string | number): DurablePipeline;
  call(command: string, ...args: (string | number)[]): DurablePipeline;
  exec(): Promise<[Error | null, unknown][] | null>;
}

/** Redis Cluster's answers for a command that did not run because its slot is elsewhere or moving. */
const NOT_RUN_HERE = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /;
const REDIRECT_ATTEMPTS = 6;

/**
 * Runs the write queued by `write` followed by WAIT, on the write's node in one round trip: the
 * write's reply and how many replicas acknowledged. ioredis retries a cluster pipeline after MOVED or
 * ASK only when every command failed alike; here WAIT, which has no key, succeeds beside the
 * redirected write, so the redirect is followed here: a plain read of `key` teaches ioredis where
 * the slot lives now, and the pair is sent again (a redirected write did not run, so this is safe).
 */
async function execAndWait(
  redis: RedisClient,
  key: string,
  write: () => DurablePipeline,
  durability: Durability,
): Promise<[unknown, number]> {
  for (let attempt = 1; ; attempt++) {
    const results = await write().call('WAIT', durability.replicas, durability.timeoutMs).exec();
    const [err, value] = results?.[0] ?? [new Error('no reply'), null];
    if (err && attempt < REDIRECT_ATTEMPTS && NOT_RUN_HERE.test(err.message)) {
      await redis.exists(key);
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      continue;
    }
    if (err) throw err;
    const [waitErr, acknowledged] = results?.[results.length - 1] ?? [new Error('WAIT: no reply'), null];
    if (waitErr) throw waitErr;
    return [value, Number(acknowledged)];
  }
}

export function createPaymentStore(deps: {
  redis: RedisClient;
  keys: Keys;
  retentionSeconds: number;
  durability?: Durability;
  /** A money transition a primary took but fewer than `durability.replicas` acknowledged in time. */
  onUnreplicated?: (status: PaymentStatus) => void;
}): PaymentStore {
  const { redis, keys, retentionSeconds } = deps;
  const durability = deps.durability ?? { replicas: 0, timeoutMs: 0 };
  const list = createPaymentListIndex(deps);
  return {
    async get(id) {
      return decodeRecord(await redis.hgetall(keys.payment(id)));
    },
    async getMany(ids) {
      return Promise.all(ids.map(async (id) => decodeRecord(await redis.hgetall(keys.payment(id)))));
    },
    async getPollFields(id) {
      const [status, arid, interval, expiresAt, attempts, amount, currency, consent, held] = await redis.hmget(
        keys.payment(id),
        FIELD.status,
        FIELD.authReqId,
        FIELD.intervalMs,
        FIELD.expiresAt,
        FIELD.attempts,
        FIELD.amount,
        FIELD.currency,
        FIELD.bankConsentId,
        FIELD.heldToken,
      );
      return {
        status: (status ?? null) as PaymentStatus | null,
        authReqId: arid ?? null,
        intervalMs: Number(interval ?? 5000),
        expiresAt: Number(expiresAt ?? 0),
        attempts: Number(attempts ?? 0),
        amount: Number(amount ?? 0),
        currency: currency ?? '',
        bankConsentId: consent ?? null,
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
    async transition(request) {
      const { set, drop } = encodeFields({ ...request.fields, status: request.to, updatedAt: request.now });
      const shard = keys.scheduleOf(request.id);
      // Listed before it exists: a crash in between leaves an entry GET /payments skips, never a
      // payment the list misses. Not in the script: in Redis Cluster the list is in another slot.
      if (request.from === null) {
        await list.add(request.id, request.fields.createdAt ?? request.now, request.now);
        // The trace of the request creating it (POST /checkout); the worker's spans continue it.
        const traceparent = currentTraceparent();
        if (traceparent) set[TRACE_FIELD] = traceparent;
      }
      const args = [
        keys.payment(request.id),
        shard.due,
        shard.leases,
        shard.pinged,
        request.from === null ? '-' : request.from.join(','),
        JSON.stringify(set),
        drop.join(','),
        request.event?.entry ?? '',
        request.event?.deliveries.join(',') ?? '',
        request.now,
        request.schedule?.member ?? '',
        request.schedule?.at ?? 0,
        request.unschedule.join(','),
        retentionSeconds,
        request.terminal ? '1' : '0',
        keys.changesChannel,
        request.id,
      ];
      let code: number;
      if (durability.replicas > 0 && DURABLE_STATUSES.has(request.to)) {
        const write = () => (redis.pipeline() as unknown as DurablePipeline).transition(...args);
        const [value, acknowledged] = await execAndWait(redis, keys.payment(request.id), write, durability);
        code = Number(value);
        if (code === 1 && acknowledged < durability.replicas) deps.onUnreplicated?.(request.to);
      } else code = await redis.transition(...args);
      return code === 1 ? 'ok' : code === -1 ? 'not_found' : 'conflict';
    },
    async recordBankCall(id, at) {
      if (durability.replicas === 0) {
        await redis.hset(keys.payment(id), FIELD.bankCalledAt, String(at));
        return true;
      }
      const key = keys.payment(id);
      const write = () => (redis.pipeline() as unknown as DurablePipeline).hset(key, FIELD.bankCalledAt, at);
      const [, acknowledged] = await execAndWait(redis, key, write, durability);
      return acknowledged >= durability.replicas;
    },
    async getTraceparent(id) {
      return redis.hget(keys.payment(id), TRACE_FIELD);
    },
  };
}
