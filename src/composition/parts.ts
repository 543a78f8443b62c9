import type { Agent } from 'undici';
import { systemClock, type Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { createMetrics, type Metrics } from '../metrics.js';
import { createBankAgent, createCibaClient } from '../ciba/index.js';
import type { CibaClient } from '../ciba/types.js';
import { createBank } from '../bank/create-bank.js';
import type { BankClient } from '../bank/types.js';
import type { BankProfile } from '../payments/bank-profile.js';
import { createStateMachine, type StateMachine } from '../payments/state-machine.js';
import type { Sealer } from '../payments/ports.js';
import type { WorkKind } from '../payments/work-items.js';
import { createSealer } from '../crypto/sealing.js';
import { createKeys, type Keys } from '../store/keys.js';
import { createNotificationStore, type NotificationStore } from '../store/notification-store.js';
import { createPaymentStore, POLL_FIELDS, POLL_PACE, type PaymentStore } from '../store/payment-store.js';
import { createStoreClient, type RedisClient } from '../store/redis.js';
import { createScheduler, type Scheduler } from '../jobs/scheduler.js';
import { createChangeFeed, type ChangeFeed } from '../webhooks/change-feed.js';
import { createDeliveryStore, type DeliveryStore } from '../webhooks/delivery-store.js';
import { createWebhookClient, type WebhookClient } from '../webhooks/webhook-client.js';
import { createWebhookSender, MAX_IN_FLIGHT_PER_TARGET } from '../webhooks/webhook-sender.js';

export interface PartsOptions {
  logger: Logger;
  clock?: Clock;
  /** Tests pass a registry without default process metrics. */
  metrics?: Metrics;
}

/** Every long-lived part of the service, built but not started: the API and the worker take what they need. */
export interface Parts {
  config: Config;
  logger: Logger;
  clock: Clock;
  redis: RedisClient;
  keys: Keys;
  store: PaymentStore;
  scheduler: Scheduler;
  metrics: Metrics;
  stateMachine: StateMachine;
  /** The one mTLS connection pool to the bank, shared by the CIBA client and the payment API client. */
  bankAgent: Agent;
  ciba: CibaClient;
  bank: BankClient;
  /** BANK_PROFILE's checkout-time step (the Open Banking consent; nothing for the sandbox). */
  bankProfile: BankProfile;
  merchant: { name: string; iban: string };
  /** Seals tokens and stored answers at rest with TOKEN_ENCRYPTION_KEY (newest key first). */
  sealer: Sealer;
  notifications: NotificationStore;
  webhooks: {
    deliveries: DeliveryStore;
    client: WebhookClient;
    feed: ChangeFeed;
    sender: ReturnType<typeof createWebhookSender>;
  };
}

/**
 * Wires the parts from the configuration: no listening, no subscribing, no bank call. The Redis
 * client connects in the background (ioredis); everything else is plain objects.
 */
export function buildParts(config: Config, options: PartsOptions): Parts {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const { redis, keys, scheduler } = buildStoreClient(config, clock);
  const metrics = options.metrics ?? createMetrics({ depth: () => scheduler.depth() });
  const store = createPaymentStore({
    redis,
    keys,
    retentionSeconds: config.paymentRetentionSeconds,
    durability: config.redisWait,
    onUnreplicated: () => {
      metrics.operatorAlarms.inc({ alarm: 'transition_not_replicated' });
    },
    onVoidUnreplicated: () => {
      metrics.operatorAlarms.inc({ alarm: 'void_mark_not_replicated' });
    },
    onUnlisted: (paymentId, err) => {
      // The message only: a Redis reply error carries the command's arguments.
      const reason = err instanceof Error ? err.message : String(err);
      logger.error({ paymentId, reason }, 'payment created but its list entry failed; GET /payments will not show it');
      metrics.operatorAlarms.inc({ alarm: 'payment_not_listed' });
    },
  });
  const bankAgent = createBankAgent(config.bank);
  const bank = createBank({ config, agent: bankAgent, clock });
  return {
    config,
    logger,
    clock,
    redis,
    keys,
    store,
    scheduler,
    metrics,
    stateMachine: createStateMachine({ store, clock, webhookTargets: { global: Boolean(config.webhooks.url) } }),
    bankAgent,
    ciba: createCibaClient({ config, agent: bankAgent, clock, logger }),
    bank: bank.client,
    bankProfile: bank.profile,
    merchant: { name: config.merchantName, iban: config.merchantIban },
    sealer: createSealer(config.tokenEncryptionKeys),
    notifications: createNotificationStore({ redis, keys }),
    webhooks: buildWebhooks(config, { redis, keys, clock, logger, metrics }, scheduler),
  };
}

function buildStoreClient(config: Config, clock: Clock) {
  // Auto-pipelining: commands issued in one tick (claims and settles of several shards, the API's reads) share one write.
  const redis = createStoreClient(config, { autoPipelining: true });
  const keys = createKeys(config.redisPrefix);
  const scheduler = createScheduler({
    redis,
    keys,
    clock,
    leaseMs: config.workerLeaseMs,
    shards: config.schedulerShards,
    prefetch: { kind: 'poll' satisfies WorkKind, fields: POLL_FIELDS, pace: POLL_PACE },
    followTimeoutMs: config.redisCommandTimeoutMs,
  });
  return { redis, keys, scheduler };
}

function buildWebhooks(
  config: Config,
  deps: { redis: RedisClient; keys: Keys; clock: Clock; logger: Logger; metrics: Metrics },
  scheduler: Scheduler,
): Parts['webhooks'] {
  const client = createWebhookClient({
    timeoutMs: config.webhooks.timeoutMs,
    allowPrivate: config.webhooks.allowPrivate,
    connectionsPerOrigin: MAX_IN_FLIGHT_PER_TARGET,
  });
  const deliveries = createDeliveryStore({
    redis: deps.redis,
    keys: deps.keys,
    retentionSeconds: config.paymentRetentionSeconds,
  });
  return {
    deliveries,
    client,
    feed: createChangeFeed(deps),
    sender: createWebhookSender({ ...deps, scheduler, deliveries, client, config: config.webhooks }),
  };
}

/**
 * Closes the parts' connections, after the API and the worker have stopped. Bank calls still
 * running past the shutdown budget are cut (`cutBankCalls`): their leases expire and another
 * worker retries them.
 */
export async function closeParts(parts: Parts, options: { cutBankCalls: boolean }): Promise<void> {
  await parts.webhooks.feed.close();
  await parts.webhooks.client.close();
  await parts.ciba.close();
  await (options.cutBankCalls ? parts.bankAgent.destroy() : parts.bankAgent.close());
  await parts.redis.quit().catch(() => undefined);
}
