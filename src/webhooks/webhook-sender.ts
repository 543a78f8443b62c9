import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Scheduler } from '../jobs/scheduler.js';
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
  /** Where earlier events' deliveries stand (per payment and target, events go out in order). */
  scheduler: Pick<Scheduler, 'pendingOf'>;
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

/** What the sender's steps share: its deps and the per-origin cap of attempts in flight. */
interface Sender extends WebhookSenderDeps {
  inFlight: InFlightCap;
}

export function createWebhookSender(deps: WebhookSenderDeps) {
  const sender: Sender = {
    ...deps,
    inFlight: createInFlightCap(deps.maxInFlightPerTarget ?? MAX_IN_FLIGHT_PER_TARGET),
  };
  return async function handleHook(arg: string): Promise<HandlerResult> {
    const item = parseHookArg(arg);
    const event = item ? await loadEvent(sender, item.paymentId, item.position) : null;
    if (!item || !event) {
      // The payment and its events outlived their retention (or the item is malformed): nothing left to deliver.
      count(sender, 'expired');
      return { done: true };
    }
    return deliver(sender, event, item.target);
  };
}

async function deliver(sender: Sender, event: LoadedEvent, target: DeliveryTarget): Promise<HandlerResult> {
  const { deliveries, config, clock } = sender;
  const resolved = resolveTarget(config, target, event.payment);
  if (!resolved) {
    count(sender, 'skipped');
    return { done: true };
  }
  const existing = await deliveries.get(deliveryIdFor(event.eventId, target));
  const record = existing ?? newRecord(clock.now(), event, target, resolved.url);
  // Settled already (the lease of a finished attempt expired before it was released): nothing to do.
  if (record.state !== 'pending') return { done: true };
  if (!resolved.allowed) return settle(sender, record, 'failed', 'origin_not_allowed', 'blocked');
  if (!config.secret) return settle(sender, record, 'failed', 'no_webhook_secret', 'failed');
  if (await deliveries.isGone(resolved.url)) return settle(sender, record, 'gone', 'target_gone', 'gone');
  if (!existing) await deliveries.save(record);
  const wait = await waitForEarlierEvents(sender, event, target);
  if (wait !== null) return { at: wait };
  const origin = new URL(resolved.url).origin;
  if (!sender.inFlight.tryAcquire(origin)) {
    return { at: clock.now() + DEFER_MS + Math.floor(Math.random() * DEFER_MS) };
  }
  try {
    return await recordOutcome(sender, record, await attempt(sender, event, resolved.url, config.secret));
  } finally {
    sender.inFlight.release(origin);
  }
}

function count(sender: Sender, result: DeliveryResult): void {
  sender.metrics.webhookDeliveries.inc({ result });
}

async function loadEvent(sender: Sender, paymentId: string, position: number): Promise<LoadedEvent | null> {
  const log = await loadEventLog(sender, paymentId);
  const event = log?.events[position - 1];
  if (!log || !event) return null;
  const { type, json } = eventBody(log.record, event);
  return { eventId: event.eventId, type, paymentId, position, body: json, payment: log.record, log: log.events };
}

/** `g` is the shop's WEBHOOK_URL; `c` the checkout's callback_url, re-checked against the allow-list. */
function resolveTarget(
  config: Config['webhooks'],
  target: DeliveryTarget,
  payment: PaymentRecord,
): { url: string; allowed: boolean } | null {
  if (target === 'g') return config.url ? { url: config.url, allowed: true } : null;
  if (!payment.callbackUrl) return null;
  const origin = URL.canParse(payment.callbackUrl) ? new URL(payment.callbackUrl).origin : '';
  return { url: payment.callbackUrl, allowed: config.callbackAllowedOrigins.includes(origin) };
}

function newRecord(now: number, event: LoadedEvent, target: DeliveryTarget, url: string): DeliveryRecord {
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
  sender: Sender,
  record: DeliveryRecord,
  state: DeliveryRecord['state'],
  error: string | null,
  result: DeliveryResult,
) {
  await sender.deliveries.save({
    ...record,
    state,
    lastError: error ?? record.lastError,
    nextAttemptAt: null,
    updatedAt: sender.clock.now(),
  });
  count(sender, result);
  return { done: true } as const;
}

/**
 * Order per payment and target: event n is sent only once every earlier event of the payment for
 * the same target is settled (delivered, gone or given up), i.e. its work item is neither waiting
 * nor leased. Returns when to look again, or null to go ahead.
 */
async function waitForEarlierEvents(
  sender: Sender,
  event: LoadedEvent,
  target: DeliveryTarget,
): Promise<number | null> {
  const earlier: string[] = [];
  event.log.slice(0, event.position - 1).forEach((e, i) => {
    if (e && webhookEventType(e.status) !== null) earlier.push(workItem.hook(event.paymentId, i + 1, target));
  });
  if (earlier.length === 0) return null;
  const pending = await sender.scheduler.pendingOf(earlier);
  const now = sender.clock.now();
  let at: number | null = null;
  for (const work of pending) {
    if (work.state === 'due') at = Math.max(at ?? 0, work.at + DEFER_MS, now + DEFER_MS);
    else if (work.state === 'leased') at = Math.max(at ?? 0, now + DEFER_MS);
  }
  return at;
}

interface InFlightCap {
  tryAcquire(origin: string): boolean;
  release(origin: string): void;
}

function createInFlightCap(cap: number): InFlightCap {
  const inFlight = new Map<string, number>();
  return {
    tryAcquire(origin) {
      const n = inFlight.get(origin) ?? 0;
      if (n >= cap) return false;
      inFlight.set(origin, n + 1);
      return true;
    },
    release(origin) {
      const n = (inFlight.get(origin) ?? 1) - 1;
      if (n <= 0) inFlight.delete(origin);
      else inFlight.set(origin, n);
    },
  };
}

interface Attempt {
  outcome: PostOutcome;
  at: number;
  durationMs: number;
}

async function attempt(sender: Sender, event: LoadedEvent, url: string, secret: string): Promise<Attempt> {
  const at = sender.clock.now();
  const headers = signWebhook(secret, event.eventId, new Date(at), event.body);
  const started = performance.now();
  const outcome = await sender.client.post(url, { ...headers }, event.body);
  return { outcome, at, durationMs: Math.round(performance.now() - started) };
}

/**
 * Attempt n (0-based) is due schedule[n] seconds after the round began, so the default schedule
 * (0, 5 s, 5 min, … 24 h) retries for 24 h in all (DESIGN.md); a longer Retry-After wins.
 */
function nextAttemptAt(sender: Sender, record: DeliveryRecord, retryAfterMs: number | null): number | null {
  const offsetSeconds = sender.config.retryScheduleSeconds[record.roundAttempts];
  if (offsetSeconds === undefined) return null;
  return Math.max(record.roundStartedAt + offsetSeconds * 1000, sender.clock.now() + (retryAfterMs ?? 0));
}

async function recordOutcome(sender: Sender, record: DeliveryRecord, result: Attempt): Promise<HandlerResult> {
  const { outcome } = result;
  const { deliveries, clock } = sender;
  const tried = recordAttempt(sender, record, result);
  switch (outcome.kind) {
    case 'delivered':
      await deliveries.save({
        ...tried,
        state: 'delivered',
        deliveredAt: clock.now(),
        nextAttemptAt: null,
        updatedAt: clock.now(),
      });
      count(sender, 'delivered');
      return { done: true };
    case 'gone':
      // 410: the receiver says this URL is gone for good; nothing more is sent to it.
      await deliveries.markGone(record.url);
      return settle(sender, tried, 'gone', 'gone', 'gone');
    case 'blocked':
      return settle(sender, tried, 'failed', outcome.error, 'blocked');
    case 'retry': {
      const at = nextAttemptAt(sender, tried, outcome.retryAfterMs);
      if (at === null) return settle(sender, tried, 'failed', outcome.error, 'failed');
      await deliveries.save({ ...tried, nextAttemptAt: at, updatedAt: clock.now() });
      count(sender, 'retry');
      return { at };
    }
  }
}

/** The record with this attempt counted and in its history, and the attempt logged. */
function recordAttempt(sender: Sender, record: DeliveryRecord, result: Attempt): DeliveryRecord {
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
  sender.logger.info(
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
  return tried;
}
