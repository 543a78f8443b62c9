import type { NextStep } from '../payments/ports.js';
import type { Handler } from './worker-loop.js';

/** `poll:<payment id>`: one token poll and its outcome (payments/record-token-outcome.ts). */
export function createTokenPoller(recordTokenOutcome: (paymentId: string) => Promise<NextStep>): Handler {
  return (paymentId) => recordTokenOutcome(paymentId);
}
