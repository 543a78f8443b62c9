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

/** How long a payment keeps retrying the bank without a definite answer when the token has no expiry. */
const DEFAULT_SUBMIT_WINDOW_MS = 15 * 60_000;

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
    const outcome = await bank.createPayment({
      accessToken: openToken(payment.sealedAccessToken, deps.tokenKeys),
      idempotencyKey: payment.id,
      amount: formatMinorUnits(payment.amount, payment.currency),
      currency: payment.currency.toUpperCase(),
      creditor: { name: deps.merchant.name, iban: deps.merchant.iban },
      remittanceInformation: remittanceFor(payment.id),
      endToEndId: payment.id,
    });
    switch (outcome.kind) {
      case 'accepted':
        await stateMachine.transition(payment, 'succeeded', { fields: { bankPaymentId: outcome.bankPaymentId } });
        return { done: true };
      case 'rejected':
        logger.info({ paymentId, reason: outcome.reason }, 'bank rejected the payment');
        await stateMachine.transition(payment, 'failed', { failureCode: 'bank_rejected' });
        return { done: true };
      case 'retry': {
        const deadline = payment.accessTokenExpiresAt ?? payment.updatedAt + DEFAULT_SUBMIT_WINDOW_MS;
        const at =
          clock.now() +
          backoffMs(payment.attempts, {
            baseMs: 500,
            maxMs: 30_000,
            ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}),
          });
        if (at >= deadline) {
          logger.warn({ paymentId, reason: outcome.reason }, 'bank gave no definite answer before the token expired');
          await stateMachine.transition(payment, 'failed', { failureCode: 'bank_error' });
          return { done: true };
        }
        logger.warn(
          { paymentId, reason: outcome.reason, attempt: payment.attempts + 1 },
          'bank payment call will be retried',
        );
        await store.update(paymentId, { attempts: payment.attempts + 1 });
        return { at };
      }
    }
  };
}
