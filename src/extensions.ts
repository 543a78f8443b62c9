import type { ServiceOptions } from './service.js';
import { createSseRoutes } from './http/sse-routes.js';
import { createWebhookRoutes } from './http/webhook-routes.js';
import { createChangeFeed } from './webhooks/change-feed.js';
import { createDeliveryStore } from './webhooks/delivery-store.js';
import { createWebhookClient } from './webhooks/webhook-client.js';
import { createWebhookSender, HOOK_KIND, MAX_IN_FLIGHT_PER_TARGET } from './webhooks/webhook-sender.js';

/**
 * Routers and work handlers beyond the core flow (webhook delivery, server-sent events, API docs).
 * Kept apart from service.ts so each capability wires itself in one place.
 */
export const webhookExtensions: NonNullable<ServiceOptions['extensions']> = (ctx) => {
  const { config, redis, keys, store, scheduler, clock, logger, metrics } = ctx;
  const deliveries = createDeliveryStore({ redis, keys, retentionSeconds: config.paymentRetentionSeconds });
  const client = createWebhookClient({
    timeoutMs: config.webhooks.timeoutMs,
    allowPrivate: config.webhooks.allowPrivate,
    connectionsPerOrigin: MAX_IN_FLIGHT_PER_TARGET,
  });
  const feed = createChangeFeed({ redis, keys, logger });
  const sender = createWebhookSender({
    redis,
    keys,
    deliveries,
    client,
    clock,
    logger,
    metrics,
    config: config.webhooks,
  });
  return {
    routers: [
      createSseRoutes({ store, redis, keys, feed, logger, shopApiKey: config.shopApiKey }),
      createWebhookRoutes({ redis, keys, deliveries, scheduler, clock, shopApiKey: config.shopApiKey }),
    ],
    handlers: { [HOOK_KIND]: sender },
    async close() {
      await feed.close();
      await client.close();
    },
  };
};
