import { OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { documentCheckoutRoutes } from './checkout-routes.js';
import { documentCibaNotifyRoute } from './ciba-notify-route.js';
import { documentDocsRoutes } from './docs-routes.js';
import { documentHealthRoutes } from './health-routes.js';
import { createOpenApiBuilder, type OpenApiBuild, type RouteDocs } from './openapi-builder.js';
import { documentPaymentRoutes } from './payment-routes.js';
import { documentSseRoutes } from './sse-routes.js';
import { documentWebhookRoutes } from './webhook-routes.js';

/**
 * The OpenAPI 3.1 document of the shop-facing API. Each routes file declares its own operations
 * beside its router (`document…Routes`); this module only lists them and adds the document's
 * header. A new routes file adds its documenter here (the OpenAPI test fails on an undocumented route).
 */
const ROUTE_DOCS: readonly RouteDocs[] = [
  documentCheckoutRoutes,
  documentPaymentRoutes,
  documentSseRoutes,
  documentWebhookRoutes,
  documentCibaNotifyRoute,
  documentHealthRoutes,
  documentDocsRoutes,
];

let cached: OpenApiBuild | null = null;

/** Builds the document once; later calls return the same object. */
export function buildOpenApi(): OpenApiBuild {
  if (cached) return cached;
  const b = createOpenApiBuilder();
  for (const document of ROUTE_DOCS) document(b);
  const document = new OpenApiGeneratorV31(b.registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'ciba-checkout',
      version: '0.1.0',
      description:
        "A shop's payment service: checkouts paid by bank transfer, with the customer approving in their bank app " +
        '(OpenID Connect CIBA). All errors are `application/problem+json` with a stable `code`. Amounts are integers in ' +
        'minor units; currencies lower-case ISO 4217. Bodies over 16 KiB are refused; unknown fields are rejected. ' +
        'The demo storefront is served at `/`.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'Storefront', description: 'Called by the shop page in the browser.' },
      { name: 'Payments', description: 'Following and canceling a payment.' },
      { name: 'Webhooks', description: 'Standard Webhooks deliveries to the shop backend.' },
      { name: 'Bank', description: 'Called by the bank.' },
      { name: 'Operations', description: 'Health and metrics.' },
      { name: 'Documentation', description: 'This reference.' },
    ],
  });
  cached = { document, examples: b.examples, routes: b.routes };
  return cached;
}
