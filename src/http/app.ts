import express, { type Express, type Router } from 'express';
import helmet from 'helmet';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { TrustProxy } from '../net-address.js';
import { createCheckoutRoutes, type CheckoutRouteDeps } from './checkout-routes.js';
import { createCibaNotifyRoute } from './ciba-notify-route.js';
import { createHealthRoutes, type HealthDeps } from './health-routes.js';
import { createPaymentRoutes, type PaymentRouteDeps } from './payment-routes.js';
import { createErrorHandler } from './problem.js';
import { requestContext, storefrontCors } from './request-context.js';
import { traceRequests } from './trace-requests.js';

export const PUBLIC_DIR = join(dirname(fileURLToPath(import.meta.url)), 'public');

export interface AppDeps {
  logger: Logger;
  metrics: Metrics;
  storefrontOrigin: string | undefined;
  storefrontEnabled: boolean;
  /** Which proxies' X-Forwarded-For to believe for `req.ip` (config TRUST_PROXY). */
  trustProxy: TrustProxy;
  checkout: CheckoutRouteDeps;
  payments: PaymentRouteDeps;
  notify: Parameters<typeof createCibaNotifyRoute>[0];
  /** The store's "not there right now" errors, answered 503 store_unavailable. */
  isStoreUnavailable: (err: unknown) => boolean;
  health: Omit<HealthDeps, 'metrics'>;
  /** A SERVER span per request (only while tracing is on: no cost otherwise). */
  tracing?: boolean;
  /** Further routers (SSE, webhooks, docs), mounted before the 404. */
  routers?: Router[];
}

/** Builds the express app without listening (tests listen on port 0). */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.trustProxy);
  app.set('query parser', 'simple');
  if (deps.tracing) app.use(traceRequests(deps.checkout.shopApiKey));
  app.use(requestContext(deps.logger, deps.metrics));
  app.use(helmet({ crossOriginResourcePolicy: { policy: 'same-site' } }));
  app.use(storefrontCors(deps.storefrontOrigin));
  app.use(express.json({ limit: '16kb', strict: true, type: ['application/json', 'application/*+json'] }));

  app.use(createHealthRoutes({ ...deps.health, metrics: deps.metrics }));
  app.use(createCheckoutRoutes(deps.checkout));
  app.use(createPaymentRoutes(deps.payments));
  app.use(createCibaNotifyRoute(deps.notify));
  for (const router of deps.routers ?? []) app.use(router);
  if (deps.storefrontEnabled) app.use(express.static(PUBLIC_DIR, { index: 'index.html', maxAge: '5m' }));

  app.use((req, _res, next) => {
    next(new AppError('not_found', `No route for ${req.method} ${req.path}.`));
  });
  app.use(createErrorHandler(deps.logger, deps.isStoreUnavailable));
  return app;
}
