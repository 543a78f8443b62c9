import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { createApp } from '../http/app.js';
import { createDocsRoutes } from '../http/docs-routes.js';
import { problemBody } from '../http/problem.js';
import { buildOpenApi } from '../http/openapi.js';
import { createSseRoutes } from '../http/sse-routes.js';
import { createStreamSlots } from '../http/stream-slots.js';
import { createWebhookRoutes } from '../http/webhook-routes.js';
import { loadCatalog, type Catalog } from '../payments/catalog.js';
import { createCancelPayment } from '../payments/cancel-payment.js';
import { createCheckoutService } from '../payments/checkout.js';
import { createHandlePing } from '../payments/handle-ping.js';
import { createStartCheckout } from '../payments/start-checkout.js';
import { createCheckoutAdmission } from '../store/checkout-admission.js';
import { createIdempotencyStore } from '../store/idempotency-store.js';
import { createPaymentListIndex } from '../store/payment-list-index.js';
import { isStoreUnavailableError } from '../store/redis.js';
import type { Parts } from './parts.js';

export interface RunningApi {
  /** Base URL on the loopback interface. */
  url: string;
  /** Stops accepting connections; open ones (SSE streams, slow clients) are cut after `timeoutMs` (at most 2 s). */
  close(timeoutMs: number): Promise<void>;
}

/** The express app of the API over the parts, without listening (tests listen on port 0 or only list routes). */
export function createApiApp(parts: Parts, health: { isDraining: () => boolean }): Express {
  const { config, redis, keys, store, scheduler, stateMachine, clock, logger, metrics, notifications } = parts;
  const catalog = loadCatalog(config.catalogFile);
  const { deliveries, feed } = parts.webhooks;
  return createApp({
    logger,
    metrics,
    storefrontOrigin: config.storefrontOrigin,
    storefrontEnabled: config.storefrontEnabled,
    trustProxy: config.trustProxy,
    tracing: config.tracing !== null,
    checkout: { catalog, shopApiKey: config.shopApiKey, startCheckout: startCheckout(parts, catalog) },
    payments: {
      store,
      cancelPayment: createCancelPayment({ store, stateMachine }),
      shopApiKey: config.shopApiKey,
      list: {
        index: createPaymentListIndex({ redis, keys, retentionSeconds: config.paymentRetentionSeconds }),
        getPayments: (ids) => store.getMany(ids),
      },
    },
    notify: { handlePing: createHandlePing({ notifications, store, scheduler, clock }) },
    isStoreUnavailable: isStoreUnavailableError,
    health: { isDraining: health.isDraining, metricsToken: config.metrics.token, checks: readinessChecks(parts) },
    routers: [
      createDocsRoutes(buildOpenApi),
      createSseRoutes({
        store,
        redis,
        keys,
        feed,
        logger,
        shopApiKey: config.shopApiKey,
        slots: createStreamSlots({ perPayment: config.sse.maxStreamsPerPayment, total: config.sse.maxStreams }),
      }),
      createWebhookRoutes({ redis, keys, deliveries, scheduler, clock, shopApiKey: config.shopApiKey }),
    ],
  });
}

/** POST /checkout's use case: idempotent, admitted (rate limits, push bombing), then asked at the bank. */
function startCheckout(parts: Parts, catalog: Catalog) {
  const { config, redis, keys, store, clock, metrics } = parts;
  // The longest a checkout can take: discovery plus the bank call, each within three timeouts.
  const inFlightSeconds = Math.max(60, Math.ceil((6 * config.bank.timeoutMs) / 1000) + 30);
  return createStartCheckout({
    catalog,
    checkout: createCheckoutService({
      currency: catalog.currency,
      ciba: parts.ciba,
      stateMachine: parts.stateMachine,
      notifications: parts.notifications,
      clock,
      merchant: parts.merchant,
      bankProfile: parts.bankProfile,
      deliveryMode: config.ciba.deliveryMode,
      requestedExpiry: config.ciba.requestedExpiry,
      storeAvailable: () => redis.status === 'ready',
      schedulerShards: config.schedulerShards,
    }),
    idempotency: createIdempotencyStore({
      redis,
      keys,
      inFlightSeconds,
      sealer: parts.sealer,
      clock,
      durability: config.redisWait,
      onNoteUnreplicated: () => {
        metrics.operatorAlarms.inc({ alarm: 'claim_note_not_replicated' });
      },
    }),
    payments: store,
    holdMs: inFlightSeconds * 1000,
    admission: createCheckoutAdmission({
      redis,
      keys,
      clock,
      readPayment: (id) => store.get(id),
      limits: config.limits,
      holdMs: inFlightSeconds * 1000,
    }),
    callbackAllowedOrigins: config.webhooks.callbackAllowedOrigins,
    renderProblem: (err) => JSON.stringify(problemBody(err)),
    countOutcome: (outcome) => {
      metrics.checkouts.inc({ outcome });
    },
  });
}

/** GET /readyz: Redis answers and the bank's discovery document has been read. */
function readinessChecks({ redis, ciba }: Parts) {
  return {
    redis: async () => {
      await redis.ping(); // rejects while Redis is away
      return true;
    },
    bank_discovery: async () => {
      if (!ciba.isReady()) await ciba.ensureDiscovered();
      return ciba.isReady();
    },
  };
}

/** Starts the API (ROLE=api|all) on PORT. */
export async function startApi(parts: Parts, health: { isDraining: () => boolean }): Promise<RunningApi> {
  // The GET /payments index of a version before issue 12.4 is moved into the leaves before the first request.
  const { redis, keys, config, clock, logger } = parts;
  const index = createPaymentListIndex({ redis, keys, retentionSeconds: config.paymentRetentionSeconds });
  const moved = await index.migrateLegacyIndex(clock.now());
  if (moved > 0) logger.info({ moved }, 'payment list index: entries moved from the previous version');
  const server = createServer(createApiApp(parts, health));
  server.keepAliveTimeout = 65_000; // longer than common load balancers' idle timeout
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(parts.config.port, '0.0.0.0', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: (timeoutMs) =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeIdleConnections();
        // SSE streams and slow clients get the rest of the shutdown budget, then are cut.
        setTimeout(
          () => {
            server.closeAllConnections();
          },
          Math.min(2000, timeoutMs),
        ).unref();
      }),
  };
}
