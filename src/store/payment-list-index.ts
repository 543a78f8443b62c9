import type { PaymentListIndex } from '../payments/list-payments.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

/**
 * The list index of GET /payments: one sorted set, score = created_at (ms), member = payment id
 * (see lua/list-page-1.lua for how a page is read). About a hundred bytes per payment (measured in
 * test/integration/payment-list.test.ts), kept for PAYMENT_RETENTION_HOURS after creation: every
 * write trims what is older, so the set never outgrows the payments created within the retention.
 *
 * One key, so one hash slot in Redis Cluster: every checkout's ZADD and every list read go to one
 * primary, and that primary holds the whole index. Per-shard indexes would spread both but make
 * each page a merge of every shard's page; at ~100 B a payment one node holds ten million.
 */
export interface PaymentListWriter {
  /** Enters a payment before it is written, so no stored payment is ever missing from the list. */
  add(id: string, createdAt: number, now: number): Promise<void>;
}

export function createPaymentListIndex(deps: {
  redis: RedisClient;
  keys: Keys;
  retentionSeconds: number;
}): PaymentListIndex & PaymentListWriter {
  const { redis, keys } = deps;
  const retentionMs = deps.retentionSeconds * 1000;
  return {
    async add(id, createdAt, now) {
      await redis
        .multi()
        .zadd(keys.paymentList, createdAt, id)
        .zremrangebyscore(keys.paymentList, '-inf', `(${now - retentionMs}`)
        .exec();
    },
    async scan(q) {
      const ids = await redis.listPage(
        keys.paymentList,
        q.direction,
        q.cursor ?? '',
        q.createdGte ?? '-inf',
        q.createdLt ?? '+inf',
        q.count,
      );
      return ids === -1 ? null : ids;
    },
  };
}
