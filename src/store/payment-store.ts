import { currentTraceparent } from '../tracing.js';
import type { Keys } from './keys.js';
import { createPaymentListIndex } from './payment-list-index.js';
import type { RedisClient } from './redis.js';
import type { PaymentRecord, PaymentStatus } from '../payments/payment.js';
import type { PaymentStore, PollFields } from '../payments/ports.js';
import { decodeRecord, encodeFields, PAYMENT_FIELD, partField, TRACE_FIELDS } from './payment-hash.js';

export type { PaymentStore, PollFields, TransitionRequest, TransitionResult } from '../payments/ports.js';
export { decodeRecord, encodeFields } from './payment-hash.js';

const F = PAYMENT_FIELD;

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
  const get = async (id: string) => decodeRecord(await redis.hgetall(keys.payment(id)), id);
  return {
    get,
    async getMany(ids) {
      return Promise.all(ids.map(async (id) => decodeRecord(await redis.hgetall(keys.payment(id)), id)));
    },
    async getPollFields(id) {
      const [status, arid, arid1, interval, expiresAt, attempts, amount, currency, consent, held] = await redis.hmget(
        keys.payment(id),
        F.status,
        F.authReqId,
        partField(F.authReqId, 1),
        F.intervalMs,
        F.expiresAt,
        F.attempts,
        F.amount,
        F.currency,
        F.bankConsentId,
        F.heldToken,
      );
      // A long auth_req_id (in parts), or a hash an earlier version wrote (no `x`): read it whole.
      if (status !== null && (arid1 !== null || expiresAt === null)) {
        const record = await get(id);
        if (record) return pollFieldsOf(record);
      }
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
      const { set, drop } = encodeFields(
        { ...request.fields, status: request.to, updatedAt: request.now },
        { fresh: request.from === null },
      );
      const shard = keys.scheduleOf(request.id);
      // Listed before it exists: a crash in between leaves an entry GET /payments skips, never a
      // payment the list misses. Not in the script: in Redis Cluster the list is in another slot.
      if (request.from === null) {
        await list.add(request.id, request.fields.createdAt ?? request.now, request.now);
        // The trace of the request creating it (POST /checkout); the worker's spans continue it.
        const traceparent = currentTraceparent();
        if (traceparent) set[TRACE_FIELDS[0]] = traceparent;
      }
      const args = [
        keys.payment(request.id),
        shard.due,
        shard.leases,
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
    async getTraceparent(id) {
      const [current, legacy] = await redis.hmget(keys.payment(id), ...TRACE_FIELDS);
      return current ?? legacy ?? null;
    },
  };
}

function pollFieldsOf(r: PaymentRecord): PollFields {
  return {
    status: r.status,
    authReqId: r.authReqId,
    intervalMs: r.intervalMs,
    expiresAt: r.expiresAt,
    attempts: r.attempts,
    amount: r.amount,
    currency: r.currency,
    bankConsentId: r.bankConsentId ?? null,
    heldToken: r.heldToken,
  };
}
