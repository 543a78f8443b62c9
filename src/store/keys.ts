import { createHash } from 'node:crypto';

/**
 * Every Redis key of the service, built in one place under REDIS_PREFIX, so a prefix isolates one
 * deployment (or one test run) completely.
 */
export interface Keys {
  prefix: string;
  /** The payment hash; it also holds the payment's event log (fields `e<n>`, see payments/event-log.ts). */
  payment(id: string): string;
  /** Delivery state of one event to one target (attempts, last result). */
  delivery(deliveryId: string): string;
  /** Deliveries of a payment, newest last, for GET /webhooks/deliveries. */
  paymentDeliveries(id: string): string;
  /** Due work: member `kind:arg`, score = due time in ms. */
  due: string;
  /** Claimed work: member as in `due`, score = lease expiry in ms. */
  leases: string;
  /** Leased work nudged while in flight (a ping during a poll): due at once when settled. */
  pinged: string;
  /** Checkout idempotency record per caller scope and key. */
  idempotency(scope: string, key: string): string;
  /** Ping mode: sha256(client_notification_token) → payment id. */
  notification(tokenHash: string): string;
  /** Targets that answered 410 Gone: no more deliveries. */
  goneTargets: string;
  /** GET /payments: score = created_at (ms), member = payment id (see payment-list-index.ts). */
  paymentList: string;
  /** Pub/sub channel: payment id of every status change (SSE across instances). */
  changesChannel: string;
  /** Pub/sub channel: wake workers when work became due earlier than they planned. */
  wakeChannel: string;
  /** A customer's checkouts waiting for approval (issue 11.6), by the customer's limit key. */
  pendingCheckouts(customerKey: string): string;
  /** rate-limiter-flexible's key prefix of one limit (it appends `:<key>`). */
  rateLimit(limit: string): string;
  /** The deployment's key check value: a known text sealed with TOKEN_ENCRYPTION_KEY (see crypto/key-check.ts). */
  keyCheck: string;
}

export function createKeys(prefix: string): Keys {
  return {
    prefix,
    payment: (id) => `${prefix}pay:${id}`,
    delivery: (deliveryId) => `${prefix}dlv:${deliveryId}`,
    paymentDeliveries: (id) => `${prefix}pay:${id}:deliveries`,
    due: `${prefix}due`,
    leases: `${prefix}leases`,
    pinged: `${prefix}pinged`,
    // Hashed: a client's key may hold ':' and anything else; the hash keeps (scope, key) pairs apart.
    idempotency: (scope, key) =>
      `${prefix}idem:${createHash('sha256').update(scope).update('\0').update(key).digest('base64url')}`,
    notification: (tokenHash) => `${prefix}notify:${tokenHash}`,
    goneTargets: `${prefix}gone`,
    paymentList: `${prefix}paylist`,
    changesChannel: `${prefix}changes`,
    wakeChannel: `${prefix}wake`,
    pendingCheckouts: (customerKey) => `${prefix}pending:${customerKey}`,
    rateLimit: (limit) => `${prefix}rl:${limit}`,
    keyCheck: `${prefix}key-check`,
  };
}
