import type { PaymentListIndex } from '../payments/list-payments.js';
import type { Keys } from './keys.js';
import { PAYMENT_FIELD } from './payment-hash.js';
import type { RedisClient } from './redis.js';

/**
 * The list index of GET /payments, ordered by (created_at, id), kept for PAYMENT_RETENTION_HOURS
 * after creation: every write trims what is older, so it never outgrows the payments created
 * within the retention.
 *
 * Issue 12.4: not one sorted set (a skiplist past 128 entries, ~120 B a payment) but leaves of at
 * most 127 entries, each a compact listpack sorted set (~40 B a payment), named by a directory
 * (lua/list-add-2.lua, lua/list-page-1.lua; measured in test/integration/payment-list.test.ts).
 * A page finds its cursor's leaf by the cursor payment's created_at, read from the payment first.
 *
 * All its keys share one hash tag, so one slot in Redis Cluster: every checkout's entry and every
 * list read go to one primary, and that primary holds the whole index. Per-shard indexes would
 * spread both but make each page a merge of every shard's page; at ~40 B a payment one node holds
 * tens of millions.
 */
export interface PaymentListWriter {
  /** Enters a payment before it is written, so no stored payment is ever missing from the list. */
  add(id: string, createdAt: number, now: number): Promise<void>;
  /** The `listAdd` arguments of `add`, for a caller that sends it in a pipeline before the payment's write. */
  addArgs(id: string, createdAt: number, now: number): ListAddArgs;
}

export type ListAddArgs = Parameters<RedisClient['listAdd']>;

/** Redis' default zset-max-listpack-entries: a leaf is split when it reaches this many entries. */
const LEAF_SPLIT_AT = 128;
/** Entries moved from a pre-12.4 index per script call. */
const MIGRATE_BATCH = 500;

export function createPaymentListIndex(deps: {
  redis: RedisClient;
  keys: Keys;
  retentionSeconds: number;
}): PaymentListIndex & PaymentListWriter & { migrateLegacyIndex(now: number): Promise<number> } {
  const { redis, keys } = deps;
  const retentionMs = deps.retentionSeconds * 1000;
  const list = keys.paymentListIndex;
  const argsOf = (now: number, entries: (string | number)[]): ListAddArgs => [
    list.directory,
    list.counter,
    list.leafPrefix,
    now - retentionMs,
    LEAF_SPLIT_AT,
    ...entries,
  ];
  const addEntries = async (now: number, entries: (string | number)[]) => redis.listAdd(...argsOf(now, entries));
  return {
    async add(id, createdAt, now) {
      await addEntries(now, [createdAt, id]);
    },
    addArgs: (id, createdAt, now) => argsOf(now, [createdAt, id]),
    async scan(q) {
      let cursorCreated = '';
      if (q.cursor !== null) {
        const [created, legacy] = await redis.hmget(keys.payment(q.cursor), PAYMENT_FIELD.createdAt, 'created_at');
        cursorCreated = created ?? legacy ?? '';
      }
      const ids = await redis.listPage(
        list.directory,
        list.leafPrefix,
        q.direction,
        q.cursor ?? '',
        cursorCreated,
        q.createdGte ?? '-inf',
        q.createdLt ?? '+inf',
        q.count,
      );
      return ids === -1 ? null : ids;
    },
    /**
     * Moves the index an earlier version kept (one sorted set, `keys.paymentList`) into the
     * leaves, a batch at a time, each batch entered before it is removed there (any number of
     * processes may run this at once). Returns how many entries it moved.
     */
    async migrateLegacyIndex(now) {
      let moved = 0;
      for (;;) {
        const batch = await redis.zrange(keys.paymentList, 0, MIGRATE_BATCH - 1, 'WITHSCORES');
        if (batch.length === 0) return moved;
        const entries: (string | number)[] = [];
        const ids: string[] = [];
        for (let i = 0; i + 1 < batch.length; i += 2) {
          entries.push(batch[i + 1] as string, batch[i] as string);
          ids.push(batch[i] as string);
        }
        await addEntries(now, entries);
        await redis.zrem(keys.paymentList, ...ids);
        moved += ids.length;
      }
    },
  };
}
