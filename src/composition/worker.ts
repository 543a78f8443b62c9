import { createCibaAnswerCounter } from '../metrics.js';
import type { RedisClient } from '../store/redis.js';
import { createPaymentSubmitter } from '../jobs/payment-submitter.js';
import { createTokenPoller } from '../jobs/token-poller.js';
import { traceJobs } from '../jobs/trace-jobs.js';
import { createWorkerLoop, type WorkerLoop } from '../jobs/worker-loop.js';
import { createReconcilePayment } from '../payments/reconcile-payment.js';
import { createRecordTokenOutcome } from '../payments/record-token-outcome.js';
import { createSubmitPayment } from '../payments/submit-payment.js';
import type { Parts } from './parts.js';

export interface RunningWorker {
  loop: WorkerLoop;
  /** No new work is claimed; work in hand finishes within `timeoutMs`; the wake-up subscription ends. */
  stop(timeoutMs: number): Promise<void>;
}

/**
 * Starts the worker (ROLE=worker|all): one loop claiming due work items — token polls, bank
 * submissions, webhook deliveries — and a subscription to the wake-up channel.
 */
export async function startWorker(parts: Parts, options: { idleMs?: number } = {}): Promise<RunningWorker> {
  const { config, store, clock, logger, metrics, scheduler } = parts;
  const loop = createWorkerLoop({
    scheduler,
    clock,
    logger,
    concurrency: config.workerConcurrency,
    renewal: { renewEveryMs: Math.floor(config.workerLeaseMs / 3), maxHoldMs: config.workerMaxHoldMs },
    ...(options.idleMs !== undefined ? { idleMs: options.idleMs } : {}),
    handlers: traceJobs(config.tracing !== null, (id) => store.getTraceparent(id), {
      poll: createTokenPoller(recordTokenOutcome(parts)),
      submit: createPaymentSubmitter(submitPayment(parts)),
      hook: parts.webhooks.sender,
    }),
    onClaimed: (_item, lateMs) => {
      metrics.pollLateness.observe(Math.max(0, lateMs) / 1000);
    },
  });
  // Wake-ups (a ping from the bank, new work from another process) cut the idle sleep short.
  const subscriber = parts.redis.duplicate() as RedisClient;
  await subscriber.subscribe(parts.keys.wakeChannel);
  subscriber.on('message', () => {
    loop.nudge();
  });
  loop.start();
  return {
    loop,
    async stop(timeoutMs) {
      await loop.stop(timeoutMs);
      subscriber.disconnect();
    },
  };
}

function recordTokenOutcome(parts: Parts) {
  const { config, metrics } = parts;
  return createRecordTokenOutcome({
    ...pick(parts),
    ciba: parts.ciba,
    sealer: parts.sealer,
    merchant: parts.merchant,
    deliveryMode: config.ciba.deliveryMode,
    onAnswer: createCibaAnswerCounter(metrics.cibaAnswers),
    onAlarm: (alarm) => {
      metrics.operatorAlarms.inc({ alarm });
    },
  });
}

function submitPayment(parts: Parts) {
  const { config, metrics } = parts;
  return createSubmitPayment({
    ...pick(parts),
    bank: parts.bank,
    sealer: parts.sealer,
    merchant: parts.merchant,
    onAlarm: (alarm) => {
      metrics.operatorAlarms.inc({ alarm });
    },
    reconcile: createReconcilePayment({
      ...pick(parts),
      bank: parts.bank,
      // A call the service gave up on (timeout) may still be booked a little later at the bank.
      inFlightGraceMs: 2 * config.bank.timeoutMs,
      onReconciled: (outcome) => {
        metrics.reconciliations.inc({ outcome });
        if (outcome === 'unavailable') metrics.operatorAlarms.inc({ alarm: 'reconciliation_unavailable' });
      },
    }),
  });
}

/** What every payment job needs. */
function pick({ store, stateMachine, clock, logger }: Parts) {
  return { store, stateMachine, clock, logger };
}
