import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Router } from 'express';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createBankAgent, createCibaClient } from './ciba/index.js';
import { createBankClient } from './bank/payment-client.js';
import { createApp } from './http/app.js';
import { createDocsRoutes } from './http/docs-routes.js';
import { createRateLimits } from './http/rate-limits.js';
import { loadCatalog } from './payments/catalog.js';
import { createCheckoutService } from './payments/checkout.js';
import { createStateMachine } from './payments/state-machine.js';
import { createIdempotencyStore } from './store/idempotency-store.js';
import { createKeys, type Keys } from './store/keys.js';
import { createNotificationStore } from './store/notification-store.js';
import { createPaymentStore, type PaymentStore } from './store/payment-store.js';
import { createStoreClient, type RedisClient } from './store/redis.js';
import { assertStoreFitForPayments } from './store/startup-checks.js';
import { createPaymentSubmitter } from './jobs/payment-submitter.js';
import { createScheduler, type Scheduler } from './jobs/scheduler.js';
import { createTokenPoller } from './jobs/token-poller.js';
import { createWorkerLoop, type Handler, type WorkerLoop } from './jobs/worker-loop.js';

export interface Service {
  /** Base URL of the API when ROLE runs it, else null. */
  url: string | null;
  redis: RedisClient;
  keys: Keys;
  store: PaymentStore;
  scheduler: Scheduler;
  metrics: Metrics;
  worker: WorkerLoop | null;
  /** Graceful: readiness fails, no new work is claimed, work in hand finishes (bounded), then everything closes. */
  close(): Promise<void>;
}

export interface ServiceOptions {
  logger: Logger;
  clock?: Clock;
  /** Extra routers and work handlers (webhooks, SSE, docs) registered by their modules. */
  extensions?: (ctx: ExtensionContext) => {
    routers?: Router[];
    handlers?: Record<string, Handler>;
    close?: () => Promise<void>;
  };
  /** Tests: shorter idle sleep of the worker loop. */
  workerIdleMs?: number;
  metrics?: Metrics;
}

export interface ExtensionContext {
  config: Config;
  logger: Logger;
  clock: Clock;
  redis: RedisClient;
  keys: Keys;
  store: PaymentStore;
  scheduler: Scheduler;
  metrics: Metrics;
}

/**
 * The only place that builds the service's parts and starts them (per ROLE): the API, the worker,
 * or both. `main.ts`, the demo and the tests all start the service through here.
 */
export async function startService(config: Config, options: ServiceOptions): Promise<Service> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  // Auto-pipelining: commands issued in one tick (a claimed batch's HMGETs, the API's reads) share one write.
  const redis = createStoreClient(config, { autoPipelining: true });
  try {
    await assertStoreFitForPayments(redis, config.redisClusterNodes);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  const keys = createKeys(config.redisPrefix);
  const store = createPaymentStore({ redis, keys, retentionSeconds: config.paymentRetentionSeconds });
  const scheduler = createScheduler({
    redis,
    keys,
    clock,
    leaseMs: config.workerLeaseMs,
    shards: config.schedulerShards,
  });
  await scheduler.registerShards();
  const metrics = options.metrics ?? createMetrics({ depth: () => scheduler.depth() });
  const stateMachine = createStateMachine({ store, clock, webhookTargets: { global: Boolean(config.webhooks.url) } });
  const agent = createBankAgent(config.bank);
  const ciba = createCibaClient({ config, agent, clock, logger });
  const merchant = { name: config.merchantName, iban: config.merchantIban };
  const notifications = createNotificationStore({ redis, keys });
  const ext = options.extensions?.({ config, logger, clock, redis, keys, store, scheduler, metrics }) ?? {};
  let draining = false;

  // Discovery in the background: readiness reports it, and the CIBA client retries on first use.
  ciba.ensureDiscovered().catch((err: unknown) => {
    logger.warn({ err }, 'bank discovery failed at start-up; will retry on use');
  });

  let worker: WorkerLoop | null = null;
  let subscriber: RedisClient | null = null;
  if (config.role !== 'api') {
    const bank = createBankClient({ config, agent, clock });
    worker = createWorkerLoop({
      scheduler,
      clock,
      logger,
      concurrency: config.workerConcurrency,
      renewal: { renewEveryMs: Math.floor(config.workerLeaseMs / 3), maxHoldMs: config.workerMaxHoldMs },
      ...(options.workerIdleMs !== undefined ? { idleMs: options.workerIdleMs } : {}),
      handlers: {
        poll: createTokenPoller({
          store,
          stateMachine,
          ciba,
          clock,
          logger,
          merchant,
          tokenKeys: config.tokenEncryptionKeys,
          deliveryMode: config.ciba.deliveryMode,
          metrics: {
            cibaAnswer: (answer) => {
              metrics.cibaAnswers.inc({ answer });
            },
          },
        }),
        submit: createPaymentSubmitter({
          store,
          stateMachine,
          bank,
          clock,
          logger,
          merchant,
          tokenKeys: config.tokenEncryptionKeys,
        }),
        ...ext.handlers,
      },
      onClaimed: (_item, lateMs) => {
        metrics.pollLateness.observe(Math.max(0, lateMs) / 1000);
      },
    });
    // Wake-ups (a ping from the bank, new work from another process) cut the idle sleep short.
    subscriber = redis.duplicate() as RedisClient;
    await subscriber.subscribe(keys.wakeChannel);
    const w = worker;
    subscriber.on('message', () => {
      w.nudge();
    });
    worker.start();
  }

  let server: Server | null = null;
  let url: string | null = null;
  if (config.role !== 'worker') {
    const catalog = loadCatalog(config.catalogFile);
    const checkout = createCheckoutService({
      catalog,
      ciba,
      stateMachine,
      notifications,
      clock,
      merchant,
      deliveryMode: config.ciba.deliveryMode,
      requestedExpiry: config.ciba.requestedExpiry,
      storeAvailable: () => redis.status === 'ready',
      schedulerShards: config.schedulerShards,
    });
    const app = createApp({
      logger,
      metrics,
      storefrontOrigin: config.storefrontOrigin,
      storefrontEnabled: config.storefrontEnabled,
      trustProxy: config.trustProxy,
      checkout: {
        checkout,
        catalog,
        idempotency: createIdempotencyStore({
          redis,
          keys,
          // The longest a checkout can take: discovery plus the bank call, each within three timeouts.
          inFlightSeconds: Math.max(60, Math.ceil((6 * config.bank.timeoutMs) / 1000) + 30),
          sealKeys: config.tokenEncryptionKeys,
        }),
        rateLimits: createRateLimits({
          redis,
          prefix: keys.prefix,
          checkoutPerMinute: config.limits.checkoutPerMinute,
          loginHintPerMinute: config.limits.loginHintPerMinute,
        }),
        callbackAllowedOrigins: config.webhooks.callbackAllowedOrigins,
        shopApiKey: config.shopApiKey,
      },
      payments: { store, stateMachine, shopApiKey: config.shopApiKey },
      notify: { notifications, store, scheduler, clock },
      health: {
        isDraining: () => draining,
        checks: {
          redis: async () => {
            await redis.ping(); // rejects while Redis is away
            return true;
          },
          bank_discovery: async () => {
            if (!ciba.isReady()) await ciba.ensureDiscovered();
            return ciba.isReady();
          },
        },
      },
      routers: [createDocsRoutes(), ...(ext.routers ?? [])],
    });
    server = createServer(app);
    server.keepAliveTimeout = 65_000; // longer than common load balancers' idle timeout
    await new Promise<void>((resolve, reject) => {
      server?.once('error', reject);
      server?.listen(config.port, '0.0.0.0', resolve);
    });
    const port = (server.address() as AddressInfo).port;
    url = `http://127.0.0.1:${port}`;
  }

  return {
    url,
    redis,
    keys,
    store,
    scheduler,
    metrics,
    worker,
    async close() {
      draining = true;
      // Work in hand drains first while the API still answers (/readyz 503), so a balancer sees the drain.
      await worker?.stop(config.shutdownTimeoutMs);
      if (server) {
        const s = server;
        await new Promise<void>((resolve) => {
          s.close(() => {
            resolve();
          });
          s.closeIdleConnections();
          // SSE streams and slow clients get the rest of the shutdown budget, then are cut.
          setTimeout(
            () => {
              s.closeAllConnections();
            },
            Math.min(2000, config.shutdownTimeoutMs),
          ).unref();
        });
      }
      await ext.close?.();
      await ciba.close();
      // Bank calls still running past the budget are cut: their leases expire and another worker retries them.
      await (worker && worker.inFlight() > 0 ? agent.destroy() : agent.close());
      subscriber?.disconnect();
      await redis.quit().catch(() => undefined);
    },
  };
}
