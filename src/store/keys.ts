import { createHash } from 'node:crypto';
import { shardOfPaymentId } from '../payments/payment-id.js';
import { paymentOfWorkItem } from '../payments/work-items.js';

/** The due/lease keys of one scheduler shard; on Redis Cluster all in the shard's hash slot. */
export interface ShardKeys {
  /** Due work: member `kind:arg`, score = due time in ms. */
  due: string;
  /** Claimed work: member as in `due`, score = lease expiry in ms. */
  leases: string;
  /** Leased work nudged while in flight (a ping during a poll): due at once when settled. */
  pinged: string;
  /** Key prefix of the payment hashes born in this shard: `payment(id)` is `payments + id`. */
  payments: string;
  /** Sharded pub/sub channel (SPUBLISH, in the shard's slot): wake the workers that cover the shard. */
  wake: string;
  /** Sharded pub/sub channel: the payment id of every status change of a payment born in the shard (SSE). */
  changes: string;
}

/**
 * Every Redis key of the service, built in one place under REDIS_PREFIX, so a prefix isolates one
 * deployment (or one test run) completely.
 *
 * Redis Cluster (issue 12.1): a script may only touch keys of one hash slot. The schedule is split
 * into shards whose keys carry the hash tag `{s<k>}`, and every key of a payment carries the tag of
 * the shard it was born in (read from its id, see payments/payment-id.ts), so one script can change
 * a payment and its schedule atomically. Keys used alone (idempotency, notification, rate limits)
 * carry no tag and spread over the cluster.
 */
export interface Keys {
  prefix: string;
  /** The payment hash; it also holds the payment's event log (fields `e<n>`, see payments/event-log.ts). */
  payment(id: string): string;
  /** Delivery state of one event to one target (attempts, last result). */
  delivery(deliveryId: string): string;
  /** Deliveries of a payment, newest last, for GET /webhooks/deliveries. */
  paymentDeliveries(id: string): string;
  /** The scheduler shard of a payment, or of a work item (`kind:<payment id>…`). */
  shardOf(paymentIdOrMember: string): number;
  shard(k: number): ShardKeys;
  /** The shard keys of a payment or work item: `shard(shardOf(x))`. */
  scheduleOf(paymentIdOrMember: string): ShardKeys;
  /** Set of the shard numbers any process has used (a shard count change leaves none behind). */
  shardsInUse: string;
  /** Live workers: sorted set of worker ids scored by when their entry expires (see jobs/shard-coverage.ts). */
  workers: string;
  /** Checkout idempotency record per caller scope and key. */
  idempotency(scope: string, key: string): string;
  /** Ping mode: sha256(client_notification_token) → payment id. */
  notification(tokenHash: string): string;
  /** Targets that answered 410 Gone: no more deliveries. */
  goneTargets: string;
  /** GET /payments before issue 12.4: one sorted set, score = created_at, member = id (only read to migrate it). */
  paymentList: string;
  /** GET /payments: leaves of (created_at, id) and their directory, one hash tag (see payment-list-index.ts). */
  paymentListIndex: { directory: string; counter: string; leafPrefix: string };
  /** Pub/sub channel: payment id of every status change (SSE across instances). */
  changesChannel: string;
  /** A customer's checkouts waiting for approval (issue 11.6), by the customer's limit key. */
  pendingCheckouts(customerKey: string): string;
  /** rate-limiter-flexible's key prefix of one limit (it appends `:<key>`). */
  rateLimit(limit: string): string;
  /** The deployment's key check value: a known text sealed with TOKEN_ENCRYPTION_KEY (see crypto/key-check.ts). */
  keyCheck: string;
  /** The running processes' token key fingerprints (see store/lua/register-key-holder-1.lua). */
  keyHolders: string;
}

export function createKeys(prefix: string): Keys {
  const tag = (id: string) => `{s${shardOfPaymentId(id)}}`;
  const shards = new Map<number, ShardKeys>();
  const shard = (k: number): ShardKeys => {
    let keys = shards.get(k);
    if (!keys) {
      keys = {
        due: `${prefix}{s${k}}due`,
        leases: `${prefix}{s${k}}leases`,
        pinged: `${prefix}{s${k}}pinged`,
        payments: `${prefix}{s${k}}pay:`,
        wake: `${prefix}{s${k}}wake`,
        changes: `${prefix}{s${k}}changes`,
      };
      shards.set(k, keys);
    }
    return keys;
  };
  return {
    prefix,
    payment: (id) => `${shard(shardOfPaymentId(id)).payments}${id}`,
    delivery: (deliveryId) => `${prefix}dlv:${deliveryId}`,
    paymentDeliveries: (id) => `${prefix}${tag(id)}pay:${id}:deliveries`,
    shardOf: (s) => shardOfPaymentId(paymentOfWorkItem(s)),
    shard,
    scheduleOf: (s) => shard(shardOfPaymentId(paymentOfWorkItem(s))),
    shardsInUse: `${prefix}shards`,
    workers: `${prefix}workers`,
    // Hashed: a client's key may hold ':' and anything else; the hash keeps (scope, key) pairs apart.
    idempotency: (scope, key) =>
      `${prefix}idem:${createHash('sha256').update(scope).update('\0').update(key).digest('base64url')}`,
    notification: (tokenHash) => `${prefix}notify:${tokenHash}`,
    goneTargets: `${prefix}gone`,
    paymentList: `${prefix}paylist`,
    paymentListIndex: {
      directory: `${prefix}{pl}paylist:dir`,
      counter: `${prefix}{pl}paylist:n`,
      leafPrefix: `${prefix}{pl}paylist:`,
    },
    changesChannel: `${prefix}changes`,
    pendingCheckouts: (customerKey) => `${prefix}pending:${customerKey}`,
    rateLimit: (limit) => `${prefix}rl:${limit}`,
    keyCheck: `${prefix}key-check`,
    keyHolders: `${prefix}key-holders`,
  };
}
