import type { NextStep } from '../payments/ports.js';
import type { PollClaim } from '../payments/record-token-outcome.js';
import { decodePollFields } from '../store/payment-store.js';
import type { Handler } from './worker-loop.js';

/**
 * `poll:<payment id>`: one token poll and its outcome (payments/record-token-outcome.ts), with the
 * payment's poll fields as the claim read them (scheduler `prefetch` of POLL_FIELDS), when it did
 * and they suffice (else the poll reads the payment itself), whether the claim took it over from an
 * expired lease, and its lease as renewed.
 */
export function createTokenPoller(
  recordTokenOutcome: (paymentId: string, claim: PollClaim) => Promise<NextStep>,
): Handler {
  return (paymentId, item) =>
    recordTokenOutcome(paymentId, {
      prefetched: (item.fields && decodePollFields(item.fields)) ?? undefined,
      takenOver: item.takenOver,
      lease: item, // renewals move its leaseUntil forward while the poll is in hand
    });
}
