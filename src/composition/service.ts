import type { Config } from '../config.js';
import type { Keys } from '../store/keys.js';
import type { PaymentStore } from '../store/payment-store.js';
import type { RedisClient } from '../store/redis.js';
import type { Metrics } from '../metrics.js';
import type { Scheduler } from '../jobs/scheduler.js';
import type { WorkerLoop } from '../jobs/worker-loop.js';
import { startMetricsServer, type MetricsServer } from '../http/metrics-endpoint.js';
import { startApi, type RunningApi } from './api.js';
import { assertStoreFitForPayments } from '../store/startup-checks.js';
import { verifyDeploymentKeys, type KeyHolder } from '../store/key-check-store.js';
import { buildParts, closeParts, type PartsOptions } from './parts.js';
import { startWorker, type RunningWorker } from './worker.js';

export interface Service {
  /** Base URL of the API when ROLE runs it, else null. */
  url: string | null;
  /** Base URL of the metrics listener when METRICS_PORT is set, else null. */
  metricsUrl: string | null;
  redis: RedisClient;
  keys: Keys;
  store: PaymentStore;
  scheduler: Scheduler;
  metrics: Metrics;
  worker: WorkerLoop | null;
  /** Graceful: readiness fails, no new work is claimed, work in hand finishes (bounded), then everything closes. */
  close(): Promise<void>;
}

export interface ServiceOptions extends PartsOptions {
  /** Tests: shorter idle sleep of the worker loop. */
  workerIdleMs?: number;
  /**
   * The process must stop (its keys or data layout conflict with a live process that started while
   * its registration had lapsed): `main.ts` drains and exits non-zero with the error's one line.
   * Without it (tests) the conflict is only logged.
   */
  onFatal?: (err: Error) => void;
}

/**
 * Builds the parts and starts what ROLE asks for: the API, the worker, or both. `main.ts`, the
 * demo and the tests all start the service through here.
 */
export async function startService(config: Config, options: ServiceOptions): Promise<Service> {
  // The SDK is loaded only when tracing is configured (tracing.ts is the API's no-op otherwise).
  const tracing = config.tracing ? await (await import('../tracing-sdk.js')).startTracing(config.tracing) : null;
  const parts = buildParts(config, options);
  try {
    // Before anything is stored: a store that may evict keys or misses slots would lose payments.
    await assertStoreFitForPayments(parts.redis, config.redisClusterNodes);
    await parts.scheduler.registerShards();
  } catch (err) {
    parts.redis.disconnect();
    throw err;
  }
  let draining = false;
  let keyHolder: KeyHolder;
  try {
    // Before any work: processes that cannot open each other's sealed tokens must not share a deployment.
    keyHolder = await verifyDeploymentKeys({
      redis: parts.redis,
      keys: parts.keys,
      tokenKeys: config.tokenEncryptionKeys,
      logger: parts.logger,
      ...(options.onFatal ? { onConflict: options.onFatal } : {}),
    });
  } catch (err) {
    await closeParts(parts, { cutBankCalls: false });
    throw err;
  }

  // Discovery in the background: readiness reports it, and the CIBA client retries on first use.
  parts.ciba.ensureDiscovered().catch((err: unknown) => {
    parts.logger.warn({ err }, 'bank discovery failed at start-up; will retry on use');
  });

  const worker: RunningWorker | null =
    config.role === 'api'
      ? null
      : await startWorker(parts, options.workerIdleMs !== undefined ? { idleMs: options.workerIdleMs } : {});
  const api: RunningApi | null =
    config.role === 'worker' ? null : await startApi(parts, { isDraining: () => draining });
  const metricsServer: MetricsServer | null =
    config.metrics.port === undefined ? null : await startMetricsServer(parts.metrics, config.metrics.port);

  return {
    url: api?.url ?? null,
    metricsUrl: metricsServer?.url ?? null,
    redis: parts.redis,
    keys: parts.keys,
    store: parts.store,
    scheduler: parts.scheduler,
    metrics: parts.metrics,
    worker: worker?.loop ?? null,
    async close() {
      draining = true;
      // Work in hand drains first while the API still answers (/readyz 503), so a balancer sees the drain.
      await worker?.stop(config.shutdownTimeoutMs);
      await api?.close(config.shutdownTimeoutMs);
      await metricsServer?.close();
      await keyHolder.release();
      await closeParts(parts, { cutBankCalls: (worker?.loop.inFlight() ?? 0) > 0 });
      await tracing?.close(); // exports the spans still buffered
    },
  };
}
