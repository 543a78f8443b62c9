import { createHash } from 'node:crypto';
import { fnv1a32 } from '../crypto/hashing.js';
import { shardOfPaymentId } from '../payments/payment-id.js';
import { paymentOfWorkItem } from '../payments/work-items.js';

/**
 * Buckets of a shard's due work (issue 12.4). One sorted set of 50,000 members is a skiplist of
 * about 129 B a member; sets of at most 128 short members stay listpacks of about 40 B a member
 * (`zset-max-listpack-*` defaults, not ours to change on a managed Redis). So a shard's due work is
 * spread over DUE_BUCKETS sets by a stable hash of the work item's payment id: every operation that
 * knows a member knows its bucket (scores stay exact), and all items of one payment share a bucket,
 * so the transition script touches one. A code constant, not a setting: changing it would strand
 * the items in buckets no longer computed (up to 128 × 1024 ≈ 130,000 waiting items a shard stay
 * compact; past that a bucket grows into a skiplist, slower to fill but still exact).
 */
export const DUE_BUCKETS = 1024;

/** FNV-1a (32 bit) of a work item's payment id, mod DUE_BUCKETS: the bucket of its due entry. */
export function dueBucketOf(member: string): number {
  return fnv1a32(paymentOfWorkItem(member)) % DUE_BUCKETS;
}

/** The due/lease keys of one scheduler shard; on Redis Cluster all in the shard's hash slot. */
export interface ShardKeys {
  /** Key prefix of the due buckets: bucket b is `dueBucket + b`; member `kind:arg`, score = due time in ms. */
  dueBucket: string;
  /** Directory of the due buckets: member = bucket number, score = its earliest due time (ms); empty buckets absent. */
  dueDir: string;
  /** The one due set of versions before the buckets: only drained (claim) and cleaned (drop, schedule). */
  legacyDue: string;
  /** Claimed work: member as in the due buckets (`kind:arg`), score = lease expiry in ms. */
  leases: string;
  /** Leased work nudged while in flight (a ping during a poll): due at once when settled. */
  pinged: string;
  /** Work put back from an expired lease, until claimed again: member as in `leases`, score = when (ms). */
  takenOver: string;
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
  /** The due bucket of a work item (or of a payment's items): its number and key. */
  dueOf(paymentIdOrMember: string): { bucket: number; key: string };
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
  /** A customer's checkouts waiting for approval (issue 11.6), by the customer's limit key. */
  pendingCheckouts(customerKey: string): string;
  /** rate-limiter-flexible's key prefix of one limit (it appends `:<key>`). */
  rateLimit(limit: string): string;
  /** The deployment's key check value: a known text sealed with TOKEN_ENCRYPTION_KEY (see crypto/key-check.ts). */
  keyCheck: string;
  /** The running processes' token key fingerprints (see store/lua/register-key-holder-2.lua). */
  keyHolders: string;
  /** The running processes' data layout versions, in `keyHolders`' slot (its name is the hash tag). */
  layoutHolders: string;
}

export function createKeys(prefix: string): Keys {
  const tag = (id: string) => `{s${shardOfPaymentId(id)}}`;
  const shards = new Map<number, ShardKeys>();
  const shard = (k: number): ShardKeys => {
    let keys = shards.get(k);
    if (!keys) {
      keys = {
        dueBucket: `${prefix}{s${k}}due:`,
        dueDir: `${prefix}{s${k}}due:dir`,
        legacyDue: `${prefix}{s${k}}due`,
        leases: `${prefix}{s${k}}leases`,
        pinged: `${prefix}{s${k}}pinged`,
        takenOver: `${prefix}{s${k}}takenover`,
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
    dueOf: (s) => {
      const bucket = dueBucketOf(s);
      return { bucket, key: `${shard(shardOfPaymentId(paymentOfWorkItem(s))).dueBucket}${bucket}` };
    },
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
    pendingCheckouts: (customerKey) => `${prefix}pending:${customerKey}`,
    rateLimit: (limit) => `${prefix}rl:${limit}`,
    keyCheck: `${prefix}key-check`,
    keyHolders: `${prefix}key-holders`,
    layoutHolders: `${prefix}{${prefix}key-holders}:layouts`,
  };
}
