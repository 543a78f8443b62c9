import type { Keys } from './keys.js';
import { createPaymentListIndex } from './payment-list-index.js';
import type { RedisClient } from './redis.js';
import type { FailureCode, LineItem, PaymentRecord, PaymentStatus } from '../payments/payment.js';
import type { FixedAtCreation } from '../payments/payment-events.js';

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
  attempts: 'attempts',
} as const satisfies Record<keyof PaymentRecord, string>;

export type PaymentField = keyof PaymentRecord;

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
    attempts: Number(h[F.attempts] ?? 0),
  };
}

/** The few fields a token poll needs, read with one HMGET on the hot path. */
export interface PollFields {
  status: PaymentStatus | null;
  authReqId: string | null;
  intervalMs: number;
  expiresAt: number;
  attempts: number;
  amount: number;
  currency: string;
}

export interface TransitionRequest {
  id: string;
  /** Statuses the payment must be in ('-' semantics: `null` = must not exist yet). */
  from: readonly PaymentStatus[] | null;
  to: PaymentStatus;
  fields: Partial<PaymentRecord>;
  /** The event log entry and its webhook work items ('#' in a member = the event's position). */
  event: { entry: string; deliveries: string[] } | null;
  schedule: { member: string; at: number } | null;
  unschedule: string[];
  terminal: boolean;
  now: number;
}

export type TransitionResult = 'ok' | 'not_found' | 'conflict';

export interface PaymentStore {
  get(id: string): Promise<PaymentRecord | null>;
  /** Several payments at once (one round trip with auto-pipelining); null where one is gone. */
  getMany(ids: readonly string[]): Promise<(PaymentRecord | null)[]>;
  getPollFields(id: string): Promise<PollFields>;
  /** Fields outside the payment view only (see FixedAtCreation): events are rebuilt from the record. */
  update(
    id: string,
    fields: Partial<Omit<PaymentRecord, FixedAtCreation | 'status' | 'failureCode' | 'updatedAt'>>,
  ): Promise<void>;
  transition(request: TransitionRequest): Promise<TransitionResult>;
}

/**
 * Replication on Redis Cluster (or any primary with replicas) is asynchronous: a write the primary
 * acknowledged is lost if the primary dies before a replica has it, and the promoted replica goes on
 * without it. For most writes that only repeats work (a poll, a lease). For the statuses that follow
 * money it must not: a lost `authorized` loses the access token the bank hands out once (the payment
 * would fail although the customer approved), a lost `processing` or `succeeded` lets the shop see a
 * payment go back. So those transitions are followed by `WAIT <replicas> <timeoutMs>` in the same
 * round trip (a pipeline on the payment's node), and are acknowledged only once a replica has them, or
 * the timeout passed (a replica down: then there is no replica to promote either).
 */
const DURABLE_STATUSES: ReadonlySet<PaymentStatus> = new Set(['authorized', 'processing', 'succeeded']);

export interface Durability {
  /** Replicas that must acknowledge a money transition (0: no WAIT, e.g. one Redis without replicas). */
  replicas: number;
  timeoutMs: number;
}

interface DurablePipeline {
  transition(...args: (string | number)[]): DurablePipeline;
  call(command: string, ...args: (string | number)[]): DurablePipeline;
  exec(): Promise<[Error | null, unknown][] | null>;
}

export function createPaymentStore(deps: {
  redis: RedisClient;
  keys: Keys;
  retentionSeconds: number;
  durability?: Durability;
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
      const [status, arid, interval, expiresAt, attempts, amount, currency] = await redis.hmget(
        keys.payment(id),
        F.status,
        F.authReqId,
        F.intervalMs,
        F.expiresAt,
        F.attempts,
        F.amount,
        F.currency,
      );
      return {
        status: (status ?? null) as PaymentStatus | null,
        authReqId: arid ?? null,
        intervalMs: Number(interval ?? 5000),
        expiresAt: Number(expiresAt ?? 0),
        attempts: Number(attempts ?? 0),
        amount: Number(amount ?? 0),
        currency: currency ?? '',
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
      const shard = keys.scheduleOf(r.id);
      // Listed before it exists: a crash in between leaves an entry GET /payments skips, never a
      // payment the list misses. Not in the script: in Redis Cluster the list is in another slot.
      if (r.from === null) await list.add(r.id, r.fields.createdAt ?? r.now, r.now);
      const args = [
        keys.payment(r.id),
        shard.due,
        shard.leases,
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
      ];
      let code: number;
      if (durability.replicas > 0 && DURABLE_STATUSES.has(r.to)) {
        const pipeline = redis.pipeline() as unknown as DurablePipeline;
        const results = await pipeline
          .transition(...args)
          .call('WAIT', durability.replicas, durability.timeoutMs)
          .exec();
        const [err, value] = results?.[0] ?? [new Error('transition: no reply'), null];
        if (err) throw err;
        code = Number(value);
      } else code = await redis.transition(...args);
      return code === 1 ? 'ok' : code === -1 ? 'not_found' : 'conflict';
    },
  };
}
