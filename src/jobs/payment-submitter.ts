import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { BankClient } from '../bank/types.js';
import { formatMinorUnits } from '../ciba/authorization-details.js';
import { remittanceFor, type Merchant } from '../payments/authorization.js';
import type { PaymentRecord } from '../payments/payment.js';
import { openToken } from '../payments/secrets.js';
import type { StateMachine } from '../payments/state-machine.js';
import type { PaymentStore } from '../store/payment-store.js';
import { backoffMs } from './backoff.js';
import type { Handler } from './worker-loop.js';

/** When the token has no known expiry: how long unknown outcomes are retried before they are logged as errors. */
const ALERT_AFTER_MS = 15 * 60_000;
/** First wait before asking again about a payment the bank holds as pending. */
const STATUS_POLL_BASE_MS = 1000;

/**
 * Sends the authorized payment to the bank's payment API. The payment id is the Idempotency-Key on
 * every attempt, so a retry after a crash (status still `processing`) gets the bank's first answer
 * back instead of a second transfer.
 */
export function createPaymentSubmitter(deps: {
  store: PaymentStore;
  stateMachine: StateMachine;
  bank: BankClient;
  clock: Clock;
  logger: Logger;
  merchant: Merchant;
  tokenKeys: readonly Buffer[];
}): Handler {
  const { store, stateMachine, bank, clock, logger } = deps;

  async function toProcessing(paymentId: string): Promise<PaymentRecord | null> {
    const current = await store.get(paymentId);
    if (current?.status === 'processing') return current; // a retry, or a crash after the bank call
    if (current?.status !== 'authorized') return null;
    return (await stateMachine.transition(current, 'processing')) === 'ok'
      ? { ...current, status: 'processing', attempts: 0 }
      : null;
  }

  return async function submitPayment(paymentId) {
    const payment = await toProcessing(paymentId);
    if (!payment) return { done: true };
    if (!payment.sealedAccessToken) {
      logger.error({ paymentId }, 'processing payment has no access token; failing it');
      await stateMachine.transition(payment, 'failed', { failureCode: 'bank_error' });
      return { done: true };
    }
    let accessToken: string;
    try {
      accessToken = openToken(payment.sealedAccessToken, deps.tokenKeys);
    } catch (err) {
      // Sealed with a key no longer configured, or damaged: retrying cannot help.
      logger.error({ err, paymentId }, 'access token cannot be opened; failing the payment');
      await stateMachine.transition(payment, 'failed', { failureCode: 'bank_error' });
      return { done: true };
    }
    // A payment the bank already holds as pending is followed by its status, never sent again.
    const outcome =
      payment.bankPaymentId && bank.paymentStatus
        ? await bank.paymentStatus({ bankPaymentId: payment.bankPaymentId, paymentId: payment.id })
        : await bank.createPayment({
            accessToken,
            idempotencyKey: payment.id,
            amount: formatMinorUnits(payment.amount, payment.currency),
            currency: payment.currency.toUpperCase(),
            creditor: { name: deps.merchant.name, iban: deps.merchant.iban },
            remittanceInformation: remittanceFor(payment.id),
            endToEndId: payment.id,
            ...(payment.bankConsentId ? { consentId: payment.bankConsentId } : {}),
          });
    switch (outcome.kind) {
      case 'accepted':
        await stateMachine.transition(payment, 'succeeded', { fields: { bankPaymentId: outcome.bankPaymentId } });
        return { done: true };
      case 'rejected':
        logger.info({ paymentId, reason: outcome.reason }, 'bank rejected the payment');
        await stateMachine.transition(payment, 'failed', { failureCode: 'bank_rejected' });
        return { done: true };
      case 'pending': {
        // Created but not settled (Open Banking UK Pending / AcceptedSettlementInProcess): still
        // `processing`; its status is asked again with growing gaps (1 s … 30 s).
        await store.update(paymentId, { bankPaymentId: outcome.bankPaymentId, attempts: payment.attempts + 1 });
        const delay = backoffMs(payment.attempts, {
          baseMs: STATUS_POLL_BASE_MS,
          maxMs: 30_000,
          ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}),
        });
        return { at: clock.now() + delay };
      }
      case 'retry': {
        // No definite answer (timeout, 5xx, unreadable reply): the bank may have moved the money, so the
        // payment stays `processing` and the same Idempotency-Key is sent again until the bank says yes
        // or no (DESIGN.md). Past the token's expiry that is worth an operator's look.
        const overdue = clock.now() >= (payment.accessTokenExpiresAt ?? payment.updatedAt + ALERT_AFTER_MS);
        const at =
          clock.now() +
          backoffMs(payment.attempts, {
            baseMs: 500,
            maxMs: overdue ? 10 * 60_000 : 10_000,
            ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}),
          });
        const log = overdue ? logger.error.bind(logger) : logger.warn.bind(logger);
        log(
          { paymentId, reason: outcome.reason, attempt: payment.attempts + 1, overdue },
          overdue
            ? 'bank outcome still unknown past the token expiry; retrying with the same Idempotency-Key (reconcile if it persists)'
            : 'bank payment call will be retried',
        );
        await store.update(paymentId, { attempts: payment.attempts + 1 });
        return { at };
      }
    }
  };
}
