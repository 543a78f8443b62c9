import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import { backoffMs } from './backoff.js';
import type { PaymentRecord } from './payment.js';
import type { BankClient, NextStep, PaymentStore } from './ports.js';
import type { StateMachine } from './state-machine.js';

/** How a reconciliation ended, for the metric `payment_reconciliations_total{outcome}`. */
export type ReconciliationOutcome = 'succeeded' | 'failed' | 'pending' | 'unavailable';

export interface ReconcileDeps {
  store: PaymentStore;
  stateMachine: StateMachine;
  bank: BankClient;
  clock: Clock;
  logger: Logger;
  /**
   * How long after the last payment call an empty lookup is believed: a call the service gave up on
   * (timeout) may still be booked by the bank a little later. Twice the bank timeout.
   */
  inFlightGraceMs: number;
  onReconciled?: (outcome: ReconciliationOutcome) => void;
}

/** Lookups that could not be made are retried at most this far apart. */
const MAX_LOOKUP_BACKOFF_MS = 5 * 60_000;

/**
 * Settles a `processing` payment whose bank outcome is unknown (DESIGN.md "Reconciliation"): an
 * attempt got no answer or a 5xx and a later one was refused, or the access token expired or cannot
 * be opened. Asking the bank to pay again cannot settle it; only the bank's own record can:
 *
 * 1. wait until no payment call can still be in flight at the bank;
 * 2. look the payment up by its end-to-end id (the payment id);
 * 3. booked and accepted → `succeeded` with the bank's id; nothing booked (or only rejections) →
 *    `failed/bank_rejected`; the lookup unavailable → stays `processing`, looked up again later, and
 *    an operator is told (error log, metric). Money that moved is never reported `failed`.
 */
export function createReconcilePayment(deps: ReconcileDeps): (payment: PaymentRecord) => Promise<NextStep> {
  const { store, stateMachine, bank, clock, logger } = deps;

  async function lookupUnavailable(payment: PaymentRecord, reason: string, retryAfterMs?: number): Promise<NextStep> {
    deps.onReconciled?.('unavailable');
    logger.error(
      { paymentId: payment.id, reason, attempt: payment.attempts + 1, unknownSince: payment.reconcileSince },
      'bank outcome unknown and the reconciliation lookup is unavailable; the payment stays processing (operator: check the bank)',
    );
    await store.update(payment.id, { attempts: payment.attempts + 1 });
    const delay = backoffMs(payment.attempts, {
      baseMs: 1000,
      maxMs: MAX_LOOKUP_BACKOFF_MS,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
    return { at: clock.now() + delay };
  }

  /** When an empty lookup is believed: no call noted on `payment` can still be in flight. */
  const believableAt = (payment: PaymentRecord) => (payment.bankCalledAt ?? 0) + deps.inFlightGraceMs;

  /**
   * Nothing booked: `failed/bank_rejected`, but only while no bank call was noted since the payment
   * was read: a worker whose lease was taken over may have noted one during the lookup and be
   * calling the bank now. Then the payment is read again and looked up after that call's grace.
   */
  async function failUnlessCalledSince(payment: PaymentRecord, listed: number): Promise<NextStep> {
    const moved = await stateMachine.transition(payment, 'failed', {
      failureCode: 'bank_rejected',
      whileUnchanged: { bankCalledAt: payment.bankCalledAt },
    });
    if (moved === 'conflict') {
      const current = await store.get(payment.id);
      if (current?.status !== 'processing') return { done: true };
      logger.warn(
        { paymentId: payment.id },
        'a bank call was noted during the lookup; it is looked up again after its grace',
      );
      return { at: Math.max(clock.now(), believableAt(current)) };
    }
    deps.onReconciled?.('failed');
    logger.warn({ paymentId: payment.id, listed }, 'reconciled: the bank booked nothing');
    return { done: true };
  }

  return async function reconcilePayment(payment) {
    if (clock.now() < believableAt(payment)) return { at: believableAt(payment) };

    const answer = await bank.findPayment(payment.id, {
      bankPaymentId: payment.bankPaymentId,
      consentId: payment.bankConsentId ?? null,
    });
    if (answer.kind === 'unavailable') return lookupUnavailable(payment, answer.reason, answer.retryAfterMs);

    const ours = answer.payments.filter((p) => p.endToEndId === payment.id);
    const accepted = ours.filter((p) => p.status === 'accepted');
    if (accepted.length > 1) logger.error({ paymentId: payment.id }, 'the bank booked this payment more than once');
    const booked = accepted[0];
    if (booked) {
      deps.onReconciled?.('succeeded');
      logger.warn({ paymentId: payment.id }, 'reconciled: the bank booked the payment');
      await stateMachine.transition(payment, 'succeeded', { fields: { bankPaymentId: booked.bankPaymentId } });
      return { done: true };
    }
    if (ours.every((p) => p.status === 'rejected')) return failUnlessCalledSince(payment, ours.length);
    // Listed but neither accepted nor rejected (still being processed at the bank): look again.
    deps.onReconciled?.('pending');
    await store.update(payment.id, { attempts: payment.attempts + 1 });
    return { at: clock.now() + backoffMs(payment.attempts, { baseMs: 2000, maxMs: MAX_LOOKUP_BACKOFF_MS }) };
  };
}
