import { Router } from 'express';
import type { Metrics } from '../metrics.js';
import { createMetricsHandler } from './metrics-endpoint.js';
import { z } from 'zod';
import type { OpenApiBuilder } from './openapi-builder.js';

export interface HealthDeps {
  /** Each check resolves true when its part is ready. */
  checks: Record<string, () => Promise<boolean>>;
  isDraining: () => boolean;
  metrics: Metrics;
  /** `METRICS_TOKEN`: /metrics on this port needs it; unset, /metrics is not served here. */
  metricsToken: string | undefined;
}

export function createHealthRoutes(deps: HealthDeps): Router {
  const router = Router();
  router.get('/livez', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const results: Record<string, boolean> = { accepting_work: !deps.isDraining() };
    await Promise.all(
      Object.entries(deps.checks).map(async ([name, check]) => {
        results[name] = await Promise.race([
          check().catch(() => false),
          new Promise<boolean>((r) => {
            setTimeout(() => {
              r(false);
            }, 1000).unref();
          }),
        ]);
      }),
    );
    const ready = Object.values(results).every(Boolean);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks: results });
  });
  router.get('/metrics', createMetricsHandler({ metrics: deps.metrics, token: deps.metricsToken }));
  return router;
}

/** The OpenAPI operations of the routes above, declared beside them so both change together. */
export function documentHealthRoutes(b: OpenApiBuilder): void {
  documentLivez(b);
  documentReadyz(b);
  documentMetrics(b);
}

function documentLivez(b: OpenApiBuilder): void {
  const livezResponseSchema = z.object({ status: z.literal('ok') }).openapi('Liveness');
  b.route({
    method: 'get',
    path: '/livez',
    tags: ['Operations'],
    summary: 'Liveness',
    responses: {
      200: {
        description: 'The process is alive.',
        content: b.content('GET /livez 200', livezResponseSchema, {
          ok: { summary: 'Alive', value: { status: 'ok' } },
        }),
      },
      ...b.problems('GET /livez', []),
    },
  });
}

function documentReadyz(b: OpenApiBuilder): void {
  const readyzResponseSchema = z
    .object({ status: z.enum(['ready', 'not_ready']), checks: z.record(z.string(), z.boolean()) })
    .openapi('Readiness', {
      description: 'Each check is true when ready; `accepting_work` turns false during shutdown.',
    });
  b.route({
    method: 'get',
    path: '/readyz',
    tags: ['Operations'],
    summary: 'Readiness',
    description: 'Fails while Redis or the bank discovery is unavailable, and during shutdown.',
    responses: {
      200: {
        description: 'Ready.',
        content: b.content('GET /readyz 200', readyzResponseSchema, {
          ready: {
            summary: 'Ready',
            value: { status: 'ready', checks: { accepting_work: true, redis: true, bank_discovery: true } },
          },
        }),
      },
      503: {
        description: 'Not ready.',
        content: b.content('GET /readyz 503', readyzResponseSchema, {
          bankDown: {
            summary: 'Discovery failing',
            value: { status: 'not_ready', checks: { accepting_work: true, redis: true, bank_discovery: false } },
          },
        }),
      },
      ...b.problems('GET /readyz', []),
    },
  });
}

function documentMetrics(b: OpenApiBuilder): void {
  b.route({
    method: 'get',
    path: '/metrics',
    tags: ['Operations'],
    summary: 'Prometheus metrics',
    description:
      'HTTP, CIBA outcomes, poll lateness, queue depth and webhook deliveries (prom-client). Not public: on this port ' +
      'only with `METRICS_TOKEN` set and `Authorization: Bearer <METRICS_TOKEN>`; or unauthenticated on its own ' +
      '`METRICS_PORT` (any ROLE, for the private network). With neither, 404.',
    security: [{ metricsToken: [] }],
    responses: {
      200: {
        description: 'Prometheus text exposition format.',
        content: b.content(
          'GET /metrics 200',
          z.string(),
          {
            sample: {
              summary: 'Two lines of it',
              value: '# TYPE checkouts_total counter\ncheckouts_total{outcome="accepted"} 42\n',
            },
          },
          'text/plain',
        ),
      },
      ...b.problems('GET /metrics', ['unauthorized', 'not_found']),
    },
  });
}
