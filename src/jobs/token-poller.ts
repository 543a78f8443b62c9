import type { NextStep, PollFields } from '../payments/ports.js';
import { decodePollFields } from '../store/payment-store.js';
import type { Handler } from './worker-loop.js';

/**
 * `poll:<payment id>`: one token poll and its outcome (payments/record-token-outcome.ts), with the
 * payment's poll fields as the claim read them (scheduler `prefetch` of POLL_FIELDS), when it did
 * and they suffice (else the poll reads the payment itself).
 */
export function createTokenPoller(
  recordTokenOutcome: (paymentId: string, prefetched?: PollFields) => Promise<NextStep>,
): Handler {
  return (paymentId, item) =>
    recordTokenOutcome(paymentId, (item.fields && decodePollFields(item.fields)) ?? undefined);
}
