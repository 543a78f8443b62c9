import { randomUUID } from 'node:crypto';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { AdmissionTicket, CheckoutAdmission } from '../payments/ports.js';
import type { PaymentRecord } from '../payments/payment.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

/**
 * Checkout admission on Redis (issue 11.6, push bombing: CIBA Core §15 leaves it to the client not
 * to flood a customer's phone). In order, each refusal before anything is used up by the next:
 * 1. per client address, per minute (the shop's backend is not limited here);
 * 2. the customer's cool-down after a denial: a wait that doubles with each denial within a day;
 * 3. at most `maxPendingPerLoginHint` requests waiting for approval at once (409 `checkout_pending`);
 * 4. per customer, per minute, hour and day.
 * 0 turns any of them off. Limits use rate-limiter-flexible (Date.now); the cool-down is counted
 * from the denial's time on the service clock.
 */
export type AdmissionLimits = Config['limits'];

const DAY_SECONDS = 86_400;

function limiter(redis: RedisClient, keyPrefix: string, points: number, duration: number) {
  if (points === 0) return null;
  return new RateLimiterRedis({ storeClient: redis, keyPrefix, points, duration, rejectIfRedisNotReady: true });
}

function retryAfter(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

async function consume(limit: RateLimiterRedis | null, key: string, detail: string): Promise<void> {
  if (!limit) return;
  try {
    await limit.consume(key);
  } catch (err) {
    if (err instanceof RateLimiterRes)
      throw new AppError('rate_limited', detail, { retryAfterSeconds: retryAfter(err.msBeforeNext) });
    throw err;
  }
}

const TOO_MANY_FOR_CUSTOMER = 'Too many payment requests for this bank customer; wait a little before trying again.';

export interface CheckoutAdmissionDeps {
  redis: RedisClient;
  keys: Keys;
  clock: Clock;
  /** Reads a payment's status, to see which pending checkouts have ended (and how). */
  readPayment: (id: string) => Promise<PaymentRecord | null>;
  limits: AdmissionLimits;
  /** How long a place is held while the bank is asked (the longest a checkout can take). */
  holdMs: number;
}

/** The deps with the limiters built from them. */
interface Admission extends CheckoutAdmissionDeps {
  byAddress: RateLimiterRedis | null;
  byCustomer: (RateLimiterRedis | null)[];
  /** A customer's denials today, and the cool-down they earned. */
  denials: RateLimiterRedis;
  coolDown: RateLimiterRedis;
}

export function createCheckoutAdmission(deps: CheckoutAdmissionDeps): CheckoutAdmission {
  const { redis, keys, limits } = deps;
  const admission: Admission = {
    ...deps,
    byAddress: limiter(redis, keys.rateLimit('ip'), limits.checkoutPerMinute, 60),
    byCustomer: [
      limiter(redis, keys.rateLimit('hint'), limits.loginHintPerMinute, 60),
      limiter(redis, keys.rateLimit('hint-h'), limits.loginHintPerHour, 3600),
      limiter(redis, keys.rateLimit('hint-d'), limits.loginHintPerDay, DAY_SECONDS),
    ],
    denials: new RateLimiterRedis({
      storeClient: redis,
      keyPrefix: keys.rateLimit('denials'),
      points: 1_000_000,
      duration: DAY_SECONDS,
    }),
    coolDown: new RateLimiterRedis({ storeClient: redis, keyPrefix: keys.rateLimit('cool'), points: 1, duration: 1 }),
  };
  // With neither a pending cap nor a cool-down, a customer's requests need no tracking at all.
  const tracksPending = limits.maxPendingPerLoginHint > 0 || limits.denialCooldownSeconds > 0;
  return {
    async admit({ clientAddress, customerKey }) {
      if (clientAddress !== null)
        await consume(admission.byAddress, clientAddress, 'Too many checkouts from this address; wait a little.');
      const refund = () => giveBack(admission, clientAddress, customerKey);
      if (!tracksPending) {
        for (const byCustomer of admission.byCustomer) await consume(byCustomer, customerKey, TOO_MANY_FOR_CUSTOMER);
        return { confirm: () => Promise.resolve(), release: () => Promise.resolve(), refund };
      }
      await forgetFinished(admission, customerKey);
      await assertNotCoolingDown(admission, customerKey);
      const member = await hold(admission, customerKey);
      try {
        for (const byCustomer of admission.byCustomer) await consume(byCustomer, customerKey, TOO_MANY_FOR_CUSTOMER);
      } catch (err) {
        await redis.zrem(keys.pendingCheckouts(customerKey), member);
        throw err;
      }
      return ticketFor(admission, customerKey, member, refund);
    },
    async keep({ customerKey, paymentId, expiresAt }) {
      if (tracksPending) await placeFor(redis, keys.pendingCheckouts(customerKey), paymentId, expiresAt).exec();
    },
  };
}

/** A denial lengthens the customer's wait: base × 2^(denials today − 1), at most the maximum. */
async function registerDenial(admission: Admission, customerKey: string, deniedAt: number): Promise<void> {
  const { limits } = admission;
  if (limits.denialCooldownSeconds === 0) return;
  const today = await admission.denials.penalty(customerKey, 1);
  const seconds = Math.min(
    limits.denialCooldownMaxSeconds,
    limits.denialCooldownSeconds * 2 ** Math.min(30, today.consumedPoints - 1),
  );
  const remainingMs = deniedAt + seconds * 1000 - admission.clock.now();
  if (remainingMs > 0) await admission.coolDown.block(customerKey, Math.ceil(remainingMs / 1000));
}

/**
 * Drops the customer's checkouts that no longer wait for approval, and notes denials among them.
 * ZREM decides which concurrent request counts a denial, so each counts once.
 */
async function forgetFinished(admission: Admission, customerKey: string): Promise<void> {
  const { redis } = admission;
  const pendingKey = admission.keys.pendingCheckouts(customerKey);
  const members = await redis.zrange(pendingKey, 0, -1);
  for (const id of members) {
    if (id.startsWith(HOLD_PREFIX)) continue;
    const payment = await admission.readPayment(id);
    if (payment?.status === 'pending_authorization') continue;
    const removed = await redis.zrem(pendingKey, id);
    if (removed === 1 && payment?.status === 'failed' && payment.failureCode === 'access_denied')
      await registerDenial(admission, customerKey, payment.updatedAt);
  }
}

async function assertNotCoolingDown(admission: Admission, customerKey: string): Promise<void> {
  const state = await admission.coolDown.get(customerKey);
  if (state && state.consumedPoints > 1)
    throw new AppError(
      'customer_cooling_down',
      'This customer declined a payment request recently; wait before asking their bank again.',
      { retryAfterSeconds: retryAfter(state.msBeforeNext) },
    );
}

/** A hold is a member standing for a checkout still asking the bank; confirmed, it becomes the payment id. */
const HOLD_PREFIX = 'hold:';

async function hold(admission: Admission, customerKey: string): Promise<string> {
  const member = `${HOLD_PREFIX}${randomUUID()}`;
  const now = admission.clock.now();
  const [held, waitMs = 0] = await admission.redis.reservePending(
    admission.keys.pendingCheckouts(customerKey),
    now,
    admission.limits.maxPendingPerLoginHint,
    member,
    now + admission.holdMs,
    DAY_SECONDS * 1000,
  );
  if (held !== 1)
    throw new AppError(
      'checkout_pending',
      'A payment request for this customer is already waiting in their bank app; approve or decline it there, or cancel it, before starting another.',
      { retryAfterSeconds: retryAfter(waitMs) },
    );
  return member;
}

/** The customer's place held by the payment until it expires (or ends: forgetFinished), in one MULTI. */
function placeFor(redis: RedisClient, pendingKey: string, paymentId: string, expiresAt: number) {
  return redis
    .multi()
    .zadd(pendingKey, expiresAt, paymentId)
    .pexpire(pendingKey, DAY_SECONDS * 1000);
}

function ticketFor(
  admission: Admission,
  customerKey: string,
  member: string,
  giveBackPoints: () => Promise<void>,
): AdmissionTicket {
  const { redis } = admission;
  const pendingKey = admission.keys.pendingCheckouts(customerKey);
  const release = async () => {
    await redis.zrem(pendingKey, member);
  };
  return {
    async confirm(paymentId, expiresAt) {
      await placeFor(redis, pendingKey, paymentId, expiresAt).zrem(pendingKey, member).exec();
    },
    release,
    async refund() {
      await release();
      await giveBackPoints();
    },
  };
}

/** The points one admitted checkout took from the address and customer limits, given back. */
async function giveBack(admission: Admission, clientAddress: string | null, customerKey: string): Promise<void> {
  const taken = [
    ...(clientAddress !== null && admission.byAddress ? [admission.byAddress.reward(clientAddress, 1)] : []),
    ...admission.byCustomer.flatMap((limit) => (limit ? [limit.reward(customerKey, 1)] : [])),
  ];
  await Promise.all(taken);
}
