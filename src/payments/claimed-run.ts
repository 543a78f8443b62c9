import { AppError, storeUnavailable } from '../errors.js';
import { retryInBackground } from './backoff.js';
import { PaymentIdTakenError, type CheckoutResult } from './checkout.js';
import type { ClaimRef, IdempotencyStore, NotedPayment, StoredResponse } from './idempotency.js';
import { toPaymentView, type PaymentView } from './payment.js';
import type { PaymentStore } from './ports.js';

/**
 * Background tries of settling a checkout whose creation is in doubt: from 200 ms, up to 2 s apart.
 * Its retries get 409 until it is settled, so not longer: once the store can tell again (a replica
 * acknowledges the void), the key should follow within a client's retry or two.
 */
const SETTLE_BACKOFF = { baseMs: 200, maxMs: 2000 };

export interface ClaimedRunDeps {
  idempotency: IdempotencyStore;
  /** Settles a payment whose creation is in doubt. */
  payments: Pick<PaymentStore, 'voidUnlessCreated'>;
  /** Renders a refusal as the problem document a replay sends again. */
  renderProblem: (err: AppError) => string;
  /** A claim's hold (ms): how long settling is retried in the background before a retry takes it over. */
  holdMs: number;
}

/**
 * The checkout, told to call `beforeBank` with the payment it is about to create just before the bank
 * is asked, and `beforeCreate` just before it sends the payment's create to the store.
 */
export type Checkout = (hooks: {
  beforeBank: (payment: NotedPayment) => Promise<void>;
  beforeCreate: () => void;
}) => Promise<CheckoutResult>;

/**
 * Told what came of the checkout's payment once that is known (at once, or when settled in the
 * background): whoever holds something for it (the customer's pending place) keeps it for the
 * payment that exists, and gives it back only when no payment can exist.
 */
export interface PaymentOutcome {
  created(payment: PaymentView): Promise<void>;
  none(): Promise<void>;
  /** No payment, and the bank was never asked (refused by the store first). */
  bankNotAsked(): Promise<void>;
}

export const NO_OUTCOME: PaymentOutcome = {
  created: () => Promise.resolve(),
  none: () => Promise.resolve(),
  bankNotAsked: () => Promise.resolve(),
};

/**
 * Claims the key; returns the answer for a retry (stored, or of the payment a takeover found), null
 * when this request runs; throws for a mismatch or a request in flight. `outcome` hears of the payment
 * a takeover found (its request may have crashed before keeping the customer's place for it).
 */
export async function claimKey(
  deps: ClaimedRunDeps,
  claim: ClaimRef,
  print: string,
  outcome: PaymentOutcome = NO_OUTCOME,
): Promise<StoredResponse | null> {
  const claimed = await deps.idempotency.claim(claim, print);
  switch (claimed.state) {
    case 'new':
      return null;
    case 'replay':
      return claimed.response;
    case 'mismatch':
      throw new AppError('idempotency_key_reused', 'This Idempotency-Key was used with a different request body.');
    case 'in_flight':
      throw keyInUse();
    case 'unsettled':
      // Its owner outlived the hold with a payment noted; the claim is now this request's. The payment
      // exists (its 202 is the answer), or its id is voided and this request runs afresh: the note is
      // overwritten by its own before the bank is asked.
      return settle(deps, claim, claimed.noted, null, outcome).catch((err: unknown) => {
        settleLater(deps, claim, claimed.noted, err, outcome);
        throw err;
      });
  }
}

/**
 * Runs the checkout and keeps its answer under the claim. Until the bank may be asked, a fault frees
 * the key (nothing was created). From then on a fault never frees it blindly: the payment id was
 * noted in the claim, and the create may have run with its reply lost, or may still land (a command
 * the cluster client sends again, a node resuming). So the payment is settled first (voidUnlessCreated):
 * if it exists, the answer is its 202, kept for replay, whatever the fault said; if not, its id is
 * voided so it can never appear, and only then is the key freed (or the bank's definite refusal
 * stored). While the store cannot tell, settling is retried in the background for the claim's hold
 * and a retry gets 409 idempotency_key_in_use (or 503 store_unavailable); after the hold a retry
 * takes the claim over and settles it itself (claimKey). A retry never creates a payment id beside one
 * that might still appear. `outcome` hears what came of the payment, when that is known.
 */
export async function runOnce(
  deps: ClaimedRunDeps,
  claim: ClaimRef | null,
  checkout: Checkout,
  outcome: PaymentOutcome = NO_OUTCOME,
): Promise<StoredResponse> {
  const progress: { noted: NotedPayment | null; createSent: boolean } = { noted: null, createSent: false };
  let started;
  try {
    started = await checkout({
      beforeBank: async (payment) => {
        if (claim && !(await deps.idempotency.note(claim, payment))) throw keyInUse();
        progress.noted = payment;
      },
      beforeCreate: () => {
        progress.createSent = true;
      },
    });
  } catch (err) {
    const { noted } = progress;
    if (!noted) {
      // Refused before the bank was asked (a limit, a pending request, the store): no record, a retry runs afresh.
      await quietly(outcome.bankNotAsked());
      if (claim) await quietly(deps.idempotency.release(claim));
      throw err;
    }
    if (!progress.createSent) {
      // No create was sent, and none will be (only this request sends it): the payment cannot exist,
      // so nothing is voided (a refused checkout leaves nothing in the store but its stored refusal).
      await quietly(outcome.none());
      if (claim) await endWithoutPayment(deps, claim, err);
      throw err;
    }
    // null: void; undefined: the store cannot tell yet (settled in the background).
    const found = await settle(deps, claim, noted, err, outcome).catch(() => {
      settleLater(deps, claim, noted, err, outcome);
      return undefined;
    });
    if (found) return found;
    if (!(err instanceof PaymentIdTakenError)) throw err;
    // Our own create found its id taken: by itself, sent again (the store cannot tell yet: 503), or
    // voided by a newer request with the same key that took the claim over after this one outlived
    // its hold: the key is that request's now, so 409 and the retry hears its answer, never a 500.
    if (found === undefined) throw storeUnavailable(err);
    if (claim) throw keyInUse('A newer request with this Idempotency-Key took it over; retry to get its answer.', err);
    throw err;
  }
  const response = accepted(started.payment, started.clientSecret);
  // The payment exists whatever the store says now: answered; a failed end is retried by the store.
  await quietly(outcome.created(started.payment));
  if (claim) await quietly(deps.idempotency.complete(claim, response));
  return response;
}

/**
 * Whether the noted payment exists (its 202, stored under the claim) or is now void: then, after a
 * `fault`, the claim keeps the bank's definite refusal (a 4xx other than 429) or is freed; without
 * one (a takeover) the request goes on under it. Null when void; throws while the store cannot tell.
 */
async function settle(
  deps: ClaimedRunDeps,
  claim: ClaimRef | null,
  noted: NotedPayment,
  fault: unknown,
  outcome: PaymentOutcome,
): Promise<StoredResponse | null> {
  const record = await deps.payments.voidUnlessCreated(noted.paymentId);
  if (record) {
    const payment = toPaymentView(record);
    const response = accepted(payment, noted.clientSecret);
    await quietly(outcome.created(payment));
    if (claim) await quietly(deps.idempotency.complete(claim, response));
    return response;
  }
  await quietly(outcome.none());
  if (claim && fault !== null) await endWithoutPayment(deps, claim, fault);
  return null;
}

/** No payment came of the request: the claim keeps the bank's definite refusal (a 4xx other than 429) or is freed. */
async function endWithoutPayment(deps: ClaimedRunDeps, claim: ClaimRef, fault: unknown): Promise<void> {
  if (fault instanceof AppError && fault.status < 500 && fault.status !== 429)
    await quietly(
      deps.idempotency.complete(claim, { status: fault.status, body: deps.renderProblem(fault), location: null }),
    );
  else await quietly(deps.idempotency.release(claim));
}

/** Settles in the background while the store cannot tell (a failover), for at most the claim's hold. */
function settleLater(
  deps: ClaimedRunDeps,
  claim: ClaimRef | null,
  noted: NotedPayment,
  fault: unknown,
  outcome: PaymentOutcome,
): void {
  retryInBackground(() => settle(deps, claim, noted, fault, outcome), Date.now() + deps.holdMs, SETTLE_BACKOFF);
}

/** The 202 of a checkout: the payment with its client secret (DESIGN.md POST /checkout). */
function accepted(payment: { id: string }, clientSecret: string): StoredResponse {
  return {
    status: 202,
    body: JSON.stringify({ ...payment, client_secret: clientSecret }),
    location: `/payments/${payment.id}`,
  };
}

/**
 * An end the store failed is tried again in the background by the store; the request goes on with its
 * answer. A pending place that fails to follow stays a hold until the hold ends.
 */
async function quietly(end: Promise<unknown>): Promise<void> {
  await end.catch(() => false);
}

/** 409 with Retry-After: the key belongs to a request still running (the retry then hears its answer). */
function keyInUse(
  detail = 'A request with this Idempotency-Key is still being processed.',
  cause?: PaymentIdTakenError,
): AppError {
  return new AppError('idempotency_key_in_use', detail, { retryAfterSeconds: 1 }, cause && { cause });
}
