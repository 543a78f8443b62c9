import type { Clock } from '../clock.js';
import { AppError } from '../errors.js';
import type { Scheduler } from '../jobs/scheduler.js';
import { workItem } from '../payments/work-items.js';
import type { Keys } from '../store/keys.js';
import type { RedisClient } from '../store/redis.js';
import { parseDeliveryId, type DeliveryRecord, type DeliveryStore } from './delivery-store.js';
import { findEventPosition } from './event-log-reader.js';

/** How long a resent delivery waits for its restarted record at most (a crash in between: it is sent a minute late). */
const SAVE_HOLD_MS = 60_000;

export interface ResendDeps {
  redis: RedisClient;
  keys: Keys;
  deliveries: DeliveryStore;
  scheduler: Scheduler;
  clock: Clock;
}

/**
 * Starts a delivery over (the shop asked, e.g. after fixing its receiver): a fresh retry schedule,
 * the first attempt now, the same `webhook-id` so the receiver can tell it is the same event.
 * A URL that answered 410 stays gone; an attempt in flight is not doubled.
 */
export async function resendDelivery(deps: ResendDeps, deliveryId: string): Promise<DeliveryRecord> {
  const parsed = parseDeliveryId(deliveryId);
  const record = parsed ? await deps.deliveries.get(deliveryId) : null;
  if (!parsed || !record) throw new AppError('delivery_not_found', 'No such webhook delivery.');
  if (record.state === 'gone' || (await deps.deliveries.isGone(record.url)))
    throw new AppError('webhook_target_gone', 'The receiver answered 410 Gone; nothing more is sent to this URL.');
  const position = await findEventPosition(deps, record.paymentId, parsed.eventId);
  if (position === null) throw new AppError('delivery_not_found', 'The event of this delivery is no longer kept.');
  const member = workItem.hook(record.paymentId, position, parsed.target);
  if ((await deps.redis.zscore(deps.keys.scheduleOf(member).leases, member)) !== null) throw inProgress();
  const now = deps.clock.now();
  // Claimed since the look above: that attempt runs, this one is not made beside it, and its record
  // is left as it is. Held back until the restarted record is saved: a worker claiming it sooner
  // would read the old one (a finished delivery: nothing sent).
  if (!(await deps.scheduler.schedule(member, now + SAVE_HOLD_MS))) throw inProgress();
  const restarted: DeliveryRecord = {
    ...record,
    state: 'pending',
    roundAttempts: 0,
    roundStartedAt: now,
    nextAttemptAt: now,
    updatedAt: now,
  };
  await deps.deliveries.save(restarted);
  await deps.scheduler.advance(member, now); // due now, and the workers of its shard woken
  return restarted;
}

/** The delivery as GET /webhooks/deliveries shows it (snake_case, ISO times). */
export function toDeliveryView(record: DeliveryRecord) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    id: record.id,
    event_id: record.eventId,
    event_type: record.eventType,
    payment_id: record.paymentId,
    target: record.target === 'g' ? 'webhook_url' : 'callback_url',
    url: record.url,
    state: record.state,
    attempts: record.attempts,
    last_status: record.lastStatus,
    last_error: record.lastError,
    next_attempt_at: iso(record.nextAttemptAt),
    delivered_at: iso(record.deliveredAt),
    created_at: iso(record.createdAt),
    updated_at: iso(record.updatedAt),
    history: record.history.map((a) => ({
      at: iso(a.at),
      status: a.status,
      error: a.error,
      duration_ms: a.durationMs,
    })),
  };
}

function inProgress(): AppError {
  return new AppError('delivery_in_progress', 'An attempt of this delivery is in progress.');
}
