import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { HandlerResult } from '../jobs/worker-loop.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { PaymentRecord } from '../payments/payment.js';
import { eventBody, type PaymentEvent } from '../payments/event-log.js';
import { webhookEventType } from '../payments/state-machine-rules.js';
import type { Keys } from '../store/keys.js';
import type { RedisClient } from '../store/redis.js';
import { deliveryIdFor, type DeliveryRecord, type DeliveryStore, type DeliveryTarget } from './delivery-store.js';
import { loadEventLog } from './event-log-reader.js';
import { signWebhook } from './signing.js';
import type { PostOutcome, WebhookClient } from './webhook-client.js';
import { parseHookArg, workItem } from '../payments/work-items.js';

/**
 * The `hook` work handler: delivers one event to one target (DESIGN.md "Webhooks"). The item was
 * scheduled by the transition script in the same step as the status change (the outbox), so every
 * event is delivered at least once while its attempts last; a crash mid-attempt leaves a lease that
 * expires, and the attempt is repeated with the same `webhook-id` for the receiver to deduplicate.
 */

/** Per-process cap of attempts in flight to one receiver origin; more are deferred a little. */
export const MAX_IN_FLIGHT_PER_TARGET = 8;
/** How long an item waits when its receiver is at the cap, or an earlier event is not settled yet. */
const DEFER_MS = 50;

export interface WebhookSenderDeps {
  redis: RedisClient;
  keys: Keys;
  deliveries: DeliveryStore;
  client: WebhookClient;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  config: Config['webhooks'];
  maxInFlightPerTarget?: number;
}

interface LoadedEvent {
  eventId: string;
  type: string;
  paymentId: string;
  position: number;
  /** The body, rebuilt from the payment and the event (the same bytes on every attempt). */
  body: string;
  payment: PaymentRecord;
  /** The payment's event log, position i + 1 at index i. */
  log: (PaymentEvent | null)[];
}

type DeliveryResult = 'delivered' | 'retry' | 'failed' | 'gone' | 'blocked' | 'expired' | 'skipped';

export function createWebhookSender(deps: WebhookSenderDeps) {
  const { redis, keys, deliveries, clock, logger, metrics, config } = deps;
  const cap = deps.maxInFlightPerTarget ?? MAX_IN_FLIGHT_PER_TARGET;
  const inFlight = new Map<string, number>();

  function count(result: DeliveryResult): void {
    metrics.webhookDeliveries.inc({ result });
  }

  async function loadEvent(paymentId: string, position: number): Promise<LoadedEvent | null> {
    const log = await loadEventLog({ redis, keys }, paymentId);
    const event = log?.events[position - 1];
    if (!log || !event) return null;
    const { type, json } = eventBody(log.record, event);
    return { eventId: event.eventId, type, paymentId, position, body: json, payment: log.record, log: log.events };
  }

  /** `g` is the shop's WEBHOOK_URL; `c` the checkout's callback_url, re-checked against the allow-list. */
  function resolveTarget(target: DeliveryTarget, payment: PaymentRecord): { url: string; allowed: boolean } | null {
    if (target === 'g') return config.url ? { url: config.url, allowed: true } : null;
    if (!payment.callbackUrl) return null;
    const origin = URL.canParse(payment.callbackUrl) ? new URL(payment.callbackUrl).origin : '';
    return { url: payment.callbackUrl, allowed: config.callbackAllowedOrigins.includes(origin) };
  }

  function newRecord(event: LoadedEvent, target: DeliveryTarget, url: string): DeliveryRecord {
    const now = clock.now();
    return {
      id: deliveryIdFor(event.eventId, target),
      eventId: event.eventId,
      eventType: event.type,
      paymentId: event.paymentId,
      target,
      url,
      state: 'pending',
      attempts: 0,
      roundAttempts: 0,
      roundStartedAt: now,
      lastStatus: null,
      lastError: null,
      nextAttemptAt: now,
      createdAt: now,
      updatedAt: now,
      deliveredAt: null,
      history: [],
    };
  }

  async function settle(
    record: DeliveryRecord,
    state: DeliveryRecord['state'],
    error: string | null,
    result: DeliveryResult,
  ) {
    const now = clock.now();
    await deliveries.save({
      ...record,
      state,
      lastError: error ?? record.lastError,
      nextAttemptAt: null,
      updatedAt: now,
    });
    count(result);
    return { done: true } as const;
  }

  /**
   * Order per payment and target: event n is sent only once every earlier event of the payment for
   * the same target is settled (delivered, gone or given up), i.e. its work item is neither waiting
   * nor leased. Returns when to look again, or null to go ahead.
   */
  async function waitForEarlierEvents(event: LoadedEvent, target: DeliveryTarget): Promise<number | null> {
    const earlier: string[] = [];
    event.log.slice(0, event.position - 1).forEach((e, i) => {
      if (e && webhookEventType(e.status) !== null) earlier.push(workItem.hook(event.paymentId, i + 1, target));
    });
    if (earlier.length === 0) return null;
    // One payment's items: one shard, so one hash slot (a pipeline on Redis Cluster needs that).
    const shard = keys.scheduleOf(event.paymentId);
    const pipeline = redis.pipeline();
    for (const member of earlier) pipeline.zscore(shard.due, member).zscore(shard.leases, member);
    const scores = ((await pipeline.exec()) ?? []).map(([, v]) => (v === null ? null : Number(v)));
    const now = clock.now();
    let at: number | null = null;
    for (let i = 0; i < scores.length; i += 2) {
      const due = scores[i] ?? null;
      const leased = scores[i + 1] ?? null;
      if (due !== null) at = Math.max(at ?? 0, due + DEFER_MS, now + DEFER_MS);
      else if (leased !== null) at = Math.max(at ?? 0, now + DEFER_MS);
    }
    return at;
  }

  function tryAcquire(origin: string): boolean {
    const n = inFlight.get(origin) ?? 0;
    if (n >= cap) return false;
    inFlight.set(origin, n + 1);
    return true;
  }

  function release(origin: string): void {
    const n = (inFlight.get(origin) ?? 1) - 1;
    if (n <= 0) inFlight.delete(origin);
    else inFlight.set(origin, n);
  }

  async function attempt(
    event: LoadedEvent,
    url: string,
    secret: string,
  ): Promise<{ outcome: PostOutcome; at: number; durationMs: number }> {
    const at = clock.now();
    const headers = signWebhook(secret, event.eventId, new Date(at), event.body);
    const started = performance.now();
    const outcome = await deps.client.post(url, { ...headers }, event.body);
    return { outcome, at, durationMs: Math.round(performance.now() - started) };
  }

  /**
   * Attempt n (0-based) is due schedule[n] seconds after the round began, so the default schedule
   * (0, 5 s, 5 min, … 24 h) retries for 24 h in all (DESIGN.md); a longer Retry-After wins.
   */
  function nextAttemptAt(record: DeliveryRecord, retryAfterMs: number | null): number | null {
    const offsetSeconds = config.retryScheduleSeconds[record.roundAttempts];
    if (offsetSeconds === undefined) return null;
    const now = clock.now();
    return Math.max(record.roundStartedAt + offsetSeconds * 1000, now + (retryAfterMs ?? 0));
  }

  async function recordOutcome(
    record: DeliveryRecord,
    result: Awaited<ReturnType<typeof attempt>>,
  ): Promise<HandlerResult> {
    const { outcome } = result;
    const status = outcome.kind === 'blocked' ? null : outcome.status;
    const error = outcome.kind === 'retry' || outcome.kind === 'blocked' ? outcome.error : null;
    const tried: DeliveryRecord = {
      ...record,
      attempts: record.attempts + 1,
      roundAttempts: record.roundAttempts + 1,
      lastStatus: status,
      lastError: error,
      history: [...record.history, { at: result.at, status, error, durationMs: result.durationMs }],
    };
    logger.info(
      {
        delivery: record.id,
        event: record.eventId,
        target: new URL(record.url).origin,
        status,
        error,
        attempt: tried.attempts,
      },
      'webhook attempt',
    );
    switch (outcome.kind) {
      case 'delivered':
        await deliveries.save({
          ...tried,
          state: 'delivered',
          deliveredAt: clock.now(),
          nextAttemptAt: null,
          updatedAt: clock.now(),
        });
        count('delivered');
        return { done: true };
      case 'gone':
        // 410: the receiver says this URL is gone for good; nothing more is sent to it.
        await deliveries.markGone(record.url);
        return settle(tried, 'gone', 'gone', 'gone');
      case 'blocked':
        return settle(tried, 'failed', outcome.error, 'blocked');
      case 'retry': {
        const at = nextAttemptAt(tried, outcome.retryAfterMs);
        if (at === null) return settle(tried, 'failed', outcome.error, 'failed');
        await deliveries.save({ ...tried, nextAttemptAt: at, updatedAt: clock.now() });
        count('retry');
        return { at };
      }
    }
  }

  async function deliver(event: LoadedEvent, target: DeliveryTarget): Promise<HandlerResult> {
    const resolved = resolveTarget(target, event.payment);
    if (!resolved) {
      count('skipped');
      return { done: true };
    }
    const existing = await deliveries.get(deliveryIdFor(event.eventId, target));
    const record = existing ?? newRecord(event, target, resolved.url);
    // Settled already (the lease of a finished attempt expired before it was released): nothing to do.
    if (record.state !== 'pending') return { done: true };
    if (!resolved.allowed) return settle(record, 'failed', 'origin_not_allowed', 'blocked');
    if (!config.secret) return settle(record, 'failed', 'no_webhook_secret', 'failed');
    if (await deliveries.isGone(resolved.url)) return settle(record, 'gone', 'target_gone', 'gone');
    if (!existing) await deliveries.save(record);
    const wait = await waitForEarlierEvents(event, target);
    if (wait !== null) return { at: wait };
    const origin = new URL(resolved.url).origin;
    if (!tryAcquire(origin)) return { at: clock.now() + DEFER_MS + Math.floor(Math.random() * DEFER_MS) };
    try {
      return await recordOutcome(record, await attempt(event, resolved.url, config.secret));
    } finally {
      release(origin);
    }
  }

  return async function handleHook(arg: string): Promise<HandlerResult> {
    const item = parseHookArg(arg);
    const event = item ? await loadEvent(item.paymentId, item.position) : null;
    if (!item || !event) {
      // The payment and its events outlived their retention (or the item is malformed): nothing left to deliver.
      count('expired');
      return { done: true };
    }
    return deliver(event, item.target);
  };
}
