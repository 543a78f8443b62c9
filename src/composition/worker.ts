import { createCibaAnswerCounter } from '../metrics.js';
import { createPaymentSubmitter } from '../jobs/payment-submitter.js';
import { createTokenPoller } from '../jobs/token-poller.js';
import { traceJobs } from '../jobs/trace-jobs.js';
import { createWorkerLoop, type WorkerLoop } from '../jobs/worker-loop.js';
import { createReconcilePayment } from '../payments/reconcile-payment.js';
import { createRecordTokenOutcome, holderGraceMs } from '../payments/record-token-outcome.js';
import { createSubmitPayment } from '../payments/submit-payment.js';
import type { Parts } from './parts.js';

export interface RunningWorker {
  loop: WorkerLoop;
  /** No new work is claimed; work in hand finishes within `timeoutMs`; the wake-up subscription ends. */
  stop(timeoutMs: number): Promise<void>;
}

/**
 * Starts the worker (ROLE=worker|all): one loop claiming due work items — token polls, bank
 * submissions, webhook deliveries — from the shards it covers, and a subscription to their wake-up channels.
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
  // The live-worker registry gives this worker its shards (issue 12.5); wake-ups of those shards (a
  // ping from the bank, a resend from the API) cut the idle sleep short.
  await scheduler.joinWorkers(() => {
    loop.nudge();
  }, logger);
  loop.start();
  return {
    loop,
    async stop(timeoutMs) {
      await loop.stop(timeoutMs);
      await scheduler.leaveWorkers();
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
    takeoverGraceMs: holderGraceMs(config.redisCommandTimeoutMs),
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
