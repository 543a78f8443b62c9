import { Router } from 'express';
import type { Metrics } from '../metrics.js';

export interface HealthDeps {
  /** Each check resolves true when its part is ready. */
  checks: Record<string, () => Promise<boolean>>;
  isDraining: () => boolean;
  metrics: Metrics;
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
  router.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  return router;
}
