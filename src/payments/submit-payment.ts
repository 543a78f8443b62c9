import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import { formatMinorUnits } from './amounts.js';
import { remittanceFor, type Merchant } from './authorization.js';
import { backoffMs } from './backoff.js';
import type { PaymentRecord } from './payment.js';
import {
  sealContext,
  type BankClient,
  type BankPaymentOutcome,
  type NextStep,
  type PaymentStore,
  type Sealer,
} from './ports.js';
import type { StateMachine } from './state-machine.js';

/** When the token has no known expiry: how long unknown outcomes are retried before reconciliation takes over. */
const UNKNOWN_EXPIRY_MS = 15 * 60_000;
const DONE: NextStep = { done: true };
/** First wait before asking again about a payment the bank holds as pending. */
const STATUS_POLL_BASE_MS = 1000;

/** Conditions an operator must hear about, counted by `operator_alarms_total{alarm}`. */
export type SubmitAlarm = 'bank_call_not_replicated';

export interface SubmitPaymentDeps {
  store: PaymentStore;
  stateMachine: StateMachine;
  bank: BankClient;
  sealer: Sealer;
  clock: Clock;
  logger: Logger;
  merchant: Merchant;
  /** Settles a payment whose outcome is unknown (reconcile-payment.ts). */
  reconcile: (payment: PaymentRecord) => Promise<NextStep>;
  onAlarm?: (alarm: SubmitAlarm) => void;
}

/**
 * Sends an authorized payment to the bank's payment API, as a story:
 *
 * 1. move it to `processing` (from then on it can no longer be canceled);
 * 2. if its outcome is already unknown, only reconciliation may settle it;
 * 3. open the access token; an unopenable or expired one cannot pay, so reconciliation decides;
 * 4. note, before the call, that an attempt may reach the bank, while the payment is still
 *    `processing` (else no call), and call only once the replicas have that note
 *    (store/payment-store.ts: what a failover can lose); else wait and try again;
 * 5. call with the payment id as Idempotency-Key (a retry gets the bank's first answer back);
 * 6. accepted → `succeeded`; the bank's `rejected` → `failed/bank_rejected`; a refusal of the
 *    request → reconciliation: one lookup decides (at once when no earlier attempt is known, after
 *    the in-flight grace when one is), since a refusal says nothing of an earlier attempt a failover
 *    may have made us forget; no answer → the same call again later, with backoff.
 */
export function createSubmitPayment(deps: SubmitPaymentDeps): (paymentId: string) => Promise<NextStep> {
  const { store, bank, clock } = deps;
  return async function submitPayment(paymentId) {
    const payment = await toProcessing(deps, paymentId);
    if (!payment) return DONE;
    if (payment.reconcileSince !== null) return deps.reconcile(payment);
    // A payment the bank already holds as pending is followed by its status, never sent again. That
    // needs only the client's own credentials: the customer's token, and its expiry, no longer matter.
    if (payment.bankPaymentId && bank.paymentStatus) {
      const status = await bank.paymentStatus({ bankPaymentId: payment.bankPaymentId, paymentId: payment.id });
      return settle(deps, payment, status, { earlierAttempt: true, retryUntil: Number.POSITIVE_INFINITY });
    }
    const accessToken = openAccessToken(deps, payment);
    if (accessToken === null) return handOverToReconciliation(deps, payment, 'no_usable_access_token');
    const expiresAt = payment.accessTokenExpiresAt ?? payment.updatedAt + UNKNOWN_EXPIRY_MS;
    if (clock.now() >= expiresAt) return handOverToReconciliation(deps, payment, 'access_token_expired');

    const earlierAttempt = payment.bankCalledAt !== null;
    const calledAt = clock.now();
    const note = await store.recordBankCall(paymentId, calledAt);
    // Ended meanwhile (this worker's lease was taken over; reconciliation may have settled it on
    // notes that lack this call): no call.
    if (note === 'not_processing') return DONE;
    if (note === 'not_replicated') return waitForReplicas(deps, payment, expiresAt);
    const outcome = await bank.createPayment({
      accessToken,
      idempotencyKey: payment.id,
      amount: formatMinorUnits(payment.amount, payment.currency),
      currency: payment.currency.toUpperCase(),
      creditor: { name: deps.merchant.name, iban: deps.merchant.iban },
      remittanceInformation: remittanceFor(payment.id),
      endToEndId: payment.id,
      ...(payment.bankConsentId ? { consentId: payment.bankConsentId } : {}),
    });
    // Reconciliation, if it comes to that, waits the in-flight grace after this call's own note:
    // a worker that took this submit over from us (or we from it) may have a call in flight that
    // this call's answer says nothing about.
    return settle(deps, { ...payment, bankCalledAt: calledAt }, outcome, { earlierAttempt, retryUntil: expiresAt });
  };
}

async function toProcessing(deps: SubmitPaymentDeps, paymentId: string): Promise<PaymentRecord | null> {
  const current = await deps.store.get(paymentId);
  if (current?.status === 'processing') return current; // a retry, or a crash after the bank call
  if (current?.status !== 'authorized') return null;
  if ((await deps.stateMachine.transition(current, 'processing')) === 'ok') {
    return { ...current, status: 'processing', attempts: 0 };
  }
  // Refused: canceled meanwhile, or this very move run twice (a cluster client re-sends a command
  // whose connection closed before the reply, and the second run finds it done). Ending here then
  // would leave the payment in `processing` with no work to finish it.
  const after = await deps.store.get(paymentId);
  return after?.status === 'processing' ? after : null;
}

function openAccessToken(deps: SubmitPaymentDeps, payment: PaymentRecord): string | null {
  if (!payment.sealedAccessToken) return null;
  try {
    return deps.sealer.open(payment.sealedAccessToken, sealContext(payment.id, 'token'));
  } catch (err) {
    deps.logger.error(
      { err, paymentId: payment.id },
      'access token cannot be opened (is TOKEN_ENCRYPTION_KEY shared?)',
    );
    return null;
  }
}

/**
 * From here on the outcome is unknown until the bank's record says otherwise. `payment.bankCalledAt`
 * is the last call before this one, if any: the lookup waits for that one to be believable.
 */
async function handOverToReconciliation(
  deps: SubmitPaymentDeps,
  payment: PaymentRecord,
  reason: string,
): Promise<NextStep> {
  const now = deps.clock.now();
  deps.logger.warn({ paymentId: payment.id, reason }, 'bank outcome unknown; settling it by reconciliation');
  await deps.store.update(payment.id, { reconcileSince: now, attempts: 0 });
  return deps.reconcile({ ...payment, reconcileSince: now, attempts: 0 });
}

/** The note of the coming call is not on enough replicas: no call now (the payment stays `processing`). */
async function waitForReplicas(deps: SubmitPaymentDeps, payment: PaymentRecord, retryUntil: number): Promise<NextStep> {
  deps.onAlarm?.('bank_call_not_replicated');
  deps.logger.error(
    { paymentId: payment.id, attempt: payment.attempts + 1 },
    'the store did not replicate the bank call note in time (REDIS_WAIT_REPLICAS); the bank is not called yet',
  );
  await deps.store.update(payment.id, { attempts: payment.attempts + 1 });
  const delay = backoffMs(payment.attempts, { baseMs: 500, maxMs: 10_000 });
  const now = deps.clock.now();
  return { at: Math.min(now + delay, Math.max(retryUntil, now)) };
}

async function fail(deps: SubmitPaymentDeps, payment: PaymentRecord, reason: string): Promise<NextStep> {
  deps.logger.info({ paymentId: payment.id, reason }, 'bank rejected the payment');
  await deps.stateMachine.transition(payment, 'failed', { failureCode: 'bank_rejected' });
  return DONE;
}

/** What the bank's answer means for the payment; `retryUntil` bounds retries of the same call. */
async function settle(
  deps: SubmitPaymentDeps,
  payment: PaymentRecord,
  outcome: BankPaymentOutcome,
  context: { earlierAttempt: boolean; retryUntil: number },
): Promise<NextStep> {
  switch (outcome.kind) {
    case 'accepted':
      await deps.stateMachine.transition(payment, 'succeeded', { fields: { bankPaymentId: outcome.bankPaymentId } });
      return DONE;
    case 'rejected':
      return fail(deps, payment, outcome.reason);
    case 'refused':
      // A refusal (say 401: the token expired meanwhile) says nothing of an earlier unanswered
      // attempt, even one whose note a failover lost: one lookup settles it (nothing booked → failed).
      return handOverToReconciliation(
        deps,
        payment,
        `${context.earlierAttempt ? 'refused_after_unknown' : 'refused'}: ${outcome.reason}`,
      );
    case 'pending':
      return askStatusLater(deps, payment, outcome);
    case 'retry':
      return callAgainLater(deps, payment, outcome, context.retryUntil);
  }
}

/**
 * Created but not settled (Open Banking UK Pending / AcceptedSettlementInProcess): still
 * `processing`; its status is asked again with growing gaps (1 s … 30 s).
 */
async function askStatusLater(
  deps: SubmitPaymentDeps,
  payment: PaymentRecord,
  outcome: { bankPaymentId: string; retryAfterMs?: number },
): Promise<NextStep> {
  await deps.store.update(payment.id, { bankPaymentId: outcome.bankPaymentId, attempts: payment.attempts + 1 });
  const delay = backoffMs(payment.attempts, {
    baseMs: STATUS_POLL_BASE_MS,
    maxMs: 30_000,
    ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}),
  });
  return { at: deps.clock.now() + delay };
}

/**
 * No definite answer (timeout, 5xx, unreadable reply): the bank may have moved the money, so the
 * payment stays `processing` and the same Idempotency-Key is sent again until the bank says yes
 * or no, or the token expires and reconciliation takes over (DESIGN.md).
 */
async function callAgainLater(
  deps: SubmitPaymentDeps,
  payment: PaymentRecord,
  outcome: { reason: string; retryAfterMs?: number },
  retryUntil: number,
): Promise<NextStep> {
  deps.logger.warn(
    { paymentId: payment.id, reason: outcome.reason, attempt: payment.attempts + 1 },
    'bank payment call will be retried',
  );
  await deps.store.update(payment.id, { attempts: payment.attempts + 1 });
  const delay = backoffMs(payment.attempts, {
    baseMs: 500,
    maxMs: 10_000,
    ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}),
  });
  const now = deps.clock.now();
  return { at: Math.min(now + delay, Math.max(retryUntil, now)) };
}
