import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { CibaClient } from '../ciba/types.js';
import { authorizationDetailsFor, type Merchant } from '../payments/authorization.js';
import type { FailureCode } from '../payments/payment.js';
import { sealToken } from '../payments/secrets.js';
import { workItem, type StateMachine } from '../payments/state-machine.js';
import type { PaymentStore } from '../store/payment-store.js';
import { PING_SAFETY_POLL_MS } from '../payments/checkout.js';
import { backoffMs } from './backoff.js';
import type { Handler } from './worker-loop.js';

export interface TokenPollerMetrics {
  cibaAnswer(kind: string): void;
}

/** slow_down: "the interval MUST be increased by at least 5 seconds for this and all subsequent requests" (CIBA Core §11). */
const SLOW_DOWN_STEP_MS = 5000;
/** Tries to record a final answer before giving the item back to its lease (about 2 s in all). */
const RECORD_ATTEMPTS = 5;

/**
 * One token poll for a pending payment (CIBA Core §7.3, §10, §11). The hot path of the service:
 * one HMGET, one token request on a kept-alive connection, one MULTI to reschedule.
 */
export function createTokenPoller(deps: {
  store: PaymentStore;
  stateMachine: StateMachine;
  ciba: CibaClient;
  clock: Clock;
  logger: Logger;
  merchant: Merchant;
  tokenKeys: readonly Buffer[];
  deliveryMode: 'poll' | 'ping';
  metrics?: TokenPollerMetrics;
}): Handler {
  const { store, stateMachine, ciba, clock } = deps;

  async function fail(paymentId: string, failureCode: FailureCode) {
    const current = await store.get(paymentId);
    if (current?.status === 'pending_authorization') await stateMachine.transition(current, 'failed', { failureCode });
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
        deps.logger.warn({ err, attempt }, 'recording the final CIBA answer failed; trying again');
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }

  return async function pollToken(paymentId) {
    const p = await store.getPollFields(paymentId);
    if (p.status !== 'pending_authorization' || !p.authReqId) return { done: true };
    const now = clock.now();
    if (now >= p.expiresAt) {
      await fail(paymentId, 'expired');
      return { done: true };
    }
    const payment = { id: paymentId, amount: p.amount, currency: p.currency };
    const outcome = await ciba.requestToken({
      authReqId: p.authReqId,
      ...(p.bankConsentId ? { intentId: p.bankConsentId } : {}),
      // Only read when the bank says yes: not built on every pending poll.
      get authorizationDetails() {
        return authorizationDetailsFor(payment, deps.merchant);
      },
    });
    deps.metrics?.cibaAnswer(outcome.kind === 'failed' ? outcome.error : outcome.kind);
    // +1 ms: due times are whole milliseconds, and a poll must never reach the bank even a fraction
    // of a millisecond before `interval` has passed (a strict bank answers slow_down).
    const later = (delay: number) => ({ at: Math.min(clock.now() + delay + 1, p.expiresAt) });
    const pollEvery = deps.deliveryMode === 'ping' ? Math.max(p.intervalMs, PING_SAFETY_POLL_MS) : p.intervalMs;

    switch (outcome.kind) {
      case 'pending':
        if (p.attempts > 0) await store.update(paymentId, { attempts: 0 });
        return later(pollEvery);
      case 'slow_down': {
        const intervalMs = p.intervalMs + SLOW_DOWN_STEP_MS;
        await store.update(paymentId, { intervalMs, attempts: 0 });
        return later(deps.deliveryMode === 'ping' ? Math.max(intervalMs, PING_SAFETY_POLL_MS) : intervalMs);
      }
      case 'retry':
        await store.update(paymentId, { attempts: p.attempts + 1 });
        return later(
          Math.max(
            p.intervalMs,
            backoffMs(p.attempts, {
              baseMs: p.intervalMs,
              ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}),
            }),
          ),
        );
      case 'failed':
        await recordFinal(() => fail(paymentId, outcome.failureCode));
        return { done: true };
      case 'authorized': {
        const sealedAccessToken = sealToken(outcome.accessToken, deps.tokenKeys);
        const receivedAt = clock.now();
        await recordFinal(async () => {
          const current = await store.get(paymentId);
          if (current?.status !== 'pending_authorization') return;
          const at = clock.now();
          await stateMachine.transition(current, 'authorized', {
            fields: {
              sealedAccessToken,
              accessTokenExpiresAt: outcome.accessTokenExpiresIn
                ? receivedAt + outcome.accessTokenExpiresIn * 1000
                : null,
            },
            schedule: { member: workItem.submit(paymentId), at },
          });
        });
        return { done: true };
      }
    }
  };
}
