import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import { authorizationDetailsFor, type Merchant } from './authorization.js';
import { backoffMs } from './backoff.js';
import { PING_SAFETY_POLL_MS } from './checkout.js';
import type { FailureCode } from './payment.js';
import {
  sealContext,
  type CibaClient,
  type NextStep,
  type PaymentStore,
  type PollFields,
  type ReceivedTokenResponse,
  type Sealer,
  type TokenExpectation,
  type TokenOutcome,
} from './ports.js';
import type { StateMachine } from './state-machine.js';
import { workItem } from './work-items.js';

/** Conditions an operator must hear about, counted by `operator_alarms_total{alarm}`. */
export type TokenAlarm = 'token_client_rejected' | 'bank_keys_unavailable';

export interface RecordTokenOutcomeDeps {
  store: PaymentStore;
  stateMachine: StateMachine;
  ciba: CibaClient;
  sealer: Sealer;
  clock: Clock;
  logger: Logger;
  merchant: Merchant;
  deliveryMode: 'poll' | 'ping';
  onAnswer?: (answer: string) => void;
  onAlarm?: (alarm: TokenAlarm) => void;
}

/** slow_down: "the interval MUST be increased by at least 5 seconds for this and all subsequent requests" (CIBA Core §11). */
const SLOW_DOWN_STEP_MS = 5000;
/** Tries to record a final answer before giving the item back to its lease (about 2 s in all). */
const RECORD_ATTEMPTS = 5;
const DONE: NextStep = { done: true };
const HELD_TOKEN_DEFAULT_LIFE_S = 900;

/**
 * One token poll for a pending payment and what its answer means (CIBA Core §7.3, §10, §11), as a
 * story: a token already received but not yet validated is validated again (a token is issued once,
 * so it is never polled for twice); past expiry the payment fails; otherwise the bank is asked and
 * its answer recorded: wait, slow down, back off, fail, keep the token for later, or `authorized`
 * with the sealed access token and the bank submission due at once.
 * The hot path of the service: one token request on a kept-alive connection; the poll fields come
 * with the claim (`prefetched`) or from one HMGET.
 */
export function createRecordTokenOutcome(
  deps: RecordTokenOutcomeDeps,
): (paymentId: string, prefetched?: PollFields) => Promise<NextStep> {
  const { store, stateMachine, ciba, clock, logger } = deps;

  async function fail(paymentId: string, failureCode: FailureCode): Promise<NextStep> {
    await recordFinal(async () => {
      const current = await store.get(paymentId);
      if (current?.status === 'pending_authorization')
        await stateMachine.transition(current, 'failed', { failureCode });
    });
    return DONE;
  }

  /**
   * The bank's final answer is spent the moment it arrives (the auth_req_id must never be sent again,
   * and a token is handed out once), so recording it is retried here rather than by polling again.
   */
  async function recordFinal(step: () => Promise<unknown>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await step();
        return;
      } catch (err) {
        if (attempt >= RECORD_ATTEMPTS) throw err;
        logger.warn({ err, attempt }, 'recording the final CIBA answer failed; trying again');
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }

  async function recordAuthorized(paymentId: string, accessToken: string, expiresAt: number | null): Promise<NextStep> {
    const sealedAccessToken = deps.sealer.seal(accessToken, sealContext(paymentId, 'token'));
    await recordFinal(async () => {
      const current = await store.get(paymentId);
      if (current?.status !== 'pending_authorization') return;
      await stateMachine.transition(current, 'authorized', {
        fields: { sealedAccessToken, accessTokenExpiresAt: expiresAt, heldToken: null },
        schedule: { member: workItem.submit(paymentId), at: clock.now() },
      });
    });
    return DONE;
  }

  /** The bank's keys could not be fetched: keep the token response (sealed) and validate it again soon. */
  async function holdToken(p: PollFields & { id: string }, response: ReceivedTokenResponse, reason: string) {
    deps.onAlarm?.('bank_keys_unavailable');
    logger.error(
      { paymentId: p.id, reason, attempt: p.attempts + 1 },
      'token received but the bank keys are unavailable; validating again later',
    );
    const heldToken = deps.sealer.seal(JSON.stringify(response), sealContext(p.id, 'held_token'));
    await recordFinal(() => store.update(p.id, { heldToken, attempts: p.attempts + 1 }));
    return { at: clock.now() + backoffMs(p.attempts, { baseMs: 1000, maxMs: 30_000 }) };
  }

  function expectationFor(p: PollFields & { id: string }, authReqId: string): TokenExpectation {
    const payment = { id: p.id, amount: p.amount, currency: p.currency };
    return {
      authReqId,
      ...(p.bankConsentId ? { intentId: p.bankConsentId } : {}),
      // Only read when the bank says yes: not built on every pending poll.
      get authorizationDetails() {
        return authorizationDetailsFor(payment, deps.merchant);
      },
    };
  }

  /** Validates a token kept from an earlier answer; the token endpoint is not asked again. */
  async function validateHeldToken(p: PollFields & { id: string }, authReqId: string): Promise<NextStep> {
    let response: ReceivedTokenResponse;
    try {
      response = JSON.parse(
        deps.sealer.open(p.heldToken ?? '', sealContext(p.id, 'held_token')),
      ) as ReceivedTokenResponse;
    } catch (err) {
      logger.error(
        { err, paymentId: p.id },
        'kept token response cannot be opened; the payment fails (no money moved)',
      );
      return fail(p.id, 'authorization_error');
    }
    // Past the access token's life (or a quarter hour when the bank gave none) it cannot pay anyway.
    if (clock.now() >= response.receivedAt + (response.expiresIn ?? HELD_TOKEN_DEFAULT_LIFE_S) * 1000) {
      return fail(p.id, 'expired');
    }
    return applyOutcome(
      p,
      await ciba.validateReceivedToken(response, expectationFor(p, authReqId)),
      response.receivedAt,
    );
  }

  async function applyOutcome(
    p: PollFields & { id: string },
    outcome: TokenOutcome,
    receivedAt: number,
  ): Promise<NextStep> {
    deps.onAnswer?.(outcome.kind === 'failed' || outcome.kind === 'client_rejected' ? outcome.error : outcome.kind);
    // +1 ms: due times are whole milliseconds, and a poll must never reach the bank even a fraction
    // of a millisecond before `interval` has passed (a strict bank answers slow_down).
    const later = (delay: number) => ({ at: Math.min(clock.now() + delay + 1, p.expiresAt) });
    const pollEvery = (intervalMs: number) =>
      deps.deliveryMode === 'ping' ? Math.max(intervalMs, PING_SAFETY_POLL_MS) : intervalMs;
    switch (outcome.kind) {
      case 'pending':
        if (p.attempts > 0) await store.update(p.id, { attempts: 0 });
        return later(pollEvery(p.intervalMs));
      case 'slow_down': {
        const intervalMs = p.intervalMs + SLOW_DOWN_STEP_MS;
        await store.update(p.id, { intervalMs, attempts: 0 });
        return later(pollEvery(intervalMs));
      }
      case 'retry':
      case 'client_rejected': {
        if (outcome.kind === 'client_rejected') {
          deps.onAlarm?.('token_client_rejected');
          logger.error(
            { paymentId: p.id, error: outcome.error, attempt: p.attempts + 1 },
            'the bank refused our client credentials at the token endpoint; retrying while the request is valid (check certificate, keys and clock)',
          );
        }
        await store.update(p.id, { attempts: p.attempts + 1 });
        const retryAfterMs = outcome.kind === 'retry' ? outcome.retryAfterMs : undefined;
        const delay = backoffMs(p.attempts, {
          baseMs: p.intervalMs,
          ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        });
        return later(Math.max(p.intervalMs, delay));
      }
      case 'failed':
        return fail(p.id, outcome.failureCode);
      case 'unverified':
        return holdToken(p, outcome.response, outcome.reason);
      case 'authorized':
        return recordAuthorized(
          p.id,
          outcome.accessToken,
          outcome.accessTokenExpiresIn ? receivedAt + outcome.accessTokenExpiresIn * 1000 : null,
        );
    }
  }

  return async function recordTokenOutcome(paymentId, prefetched) {
    const fields = prefetched ?? (await store.getPollFields(paymentId));
    const p = { ...fields, id: paymentId };
    if (p.status !== 'pending_authorization' || !p.authReqId) return DONE;
    if (p.heldToken) return validateHeldToken(p, p.authReqId);
    if (clock.now() >= p.expiresAt) return fail(paymentId, 'expired');
    const receivedAt = clock.now();
    return applyOutcome(p, await ciba.requestToken(expectationFor(p, p.authReqId)), receivedAt);
  };
}
