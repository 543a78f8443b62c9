import type { Clock } from '../clock.js';
import type { PaymentStore, TransitionResult } from '../store/payment-store.js';
import { isTerminal, toPaymentView, type FailureCode, type PaymentRecord, type PaymentStatus } from './payment.js';
import { canTransition, eventTypeFor } from './state-machine-rules.js';
import { newEventId } from './secrets.js';

/** Work item names on the scheduler's due set. */
export const workItem = {
  poll: (paymentId: string) => `poll:${paymentId}`,
  submit: (paymentId: string) => `submit:${paymentId}`,
  webhook: (eventId: string, target: 'g' | 'c') => `hook:${eventId}:${target}`,
};

export interface TransitionOptions {
  fields?: Partial<PaymentRecord>;
  failureCode?: FailureCode;
  /** Work to schedule in the same step (e.g. the payment submit after `authorized`). */
  schedule?: { member: string; at: number };
}

export interface StateMachine {
  /** Creates the payment in its first status, with its first event, atomically. */
  create(record: PaymentRecord, firstWork: { member: string; at: number }): Promise<TransitionResult>;
  /**
   * Moves a payment from the status it was read in to `to`, atomically: fails with 'conflict' if the
   * status changed meanwhile (another worker, a cancel), so a status is only ever changed once.
   */
  transition(current: PaymentRecord, to: PaymentStatus, options?: TransitionOptions): Promise<TransitionResult>;
}

export function createStateMachine(deps: {
  store: PaymentStore;
  clock: Clock;
  webhookTargets: { global: boolean };
}): StateMachine {
  const { store, clock } = deps;

  function buildEvent(next: PaymentRecord, now: number) {
    const id = newEventId();
    const type = eventTypeFor(next.status) ?? `payment.${next.status}`;
    const json = JSON.stringify({ type, timestamp: new Date(now).toISOString(), data: toPaymentView(next) });
    const deliveries: string[] = [];
    if (eventTypeFor(next.status) !== null) {
      if (deps.webhookTargets.global) deliveries.push(workItem.webhook(id, 'g'));
      if (next.callbackUrl) deliveries.push(workItem.webhook(id, 'c'));
    }
    return { id, json, deliveries };
  }

  return {
    async create(record, firstWork) {
      const now = clock.now();
      return store.transition({
        id: record.id,
        from: null,
        to: record.status,
        fields: record,
        event: buildEvent(record, now),
        schedule: firstWork,
        unschedule: [],
        terminal: false,
        now,
      });
    },

    async transition(current, to, options = {}) {
      if (!canTransition(current.status, to)) return 'conflict';
      const now = clock.now();
      const fields: Partial<PaymentRecord> = { ...options.fields, attempts: 0 };
      if (options.failureCode) fields.failureCode = options.failureCode;
      const terminal = isTerminal(to);
      if (terminal) fields.sealedAccessToken = null; // tokens are kept only until used
      const next: PaymentRecord = { ...current, ...fields, status: to, updatedAt: now };
      return store.transition({
        id: current.id,
        from: [current.status],
        to,
        fields,
        event: buildEvent(next, now),
        schedule: options.schedule ?? null,
        // A terminal payment has no more work; a cancel stops polling at once.
        unschedule: terminal ? [workItem.poll(current.id), workItem.submit(current.id)] : [],
        terminal,
        now,
      });
    },
  };
}
