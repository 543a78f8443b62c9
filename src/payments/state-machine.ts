import type { Clock } from '../clock.js';
import type { PaymentStore, TransitionResult } from './ports.js';
import { isTerminal, type FailureCode, type PaymentRecord, type PaymentStatus } from './payment.js';
import { encodeEventEntry, type FixedAtCreation } from './event-log.js';
import { canTransition, webhookEventType } from './state-machine-rules.js';
import { workItem } from './work-items.js';

export interface TransitionOptions {
  /** Other fields to set; those of the payment view are fixed at creation (events are rebuilt from them). */
  fields?: Partial<Omit<PaymentRecord, FixedAtCreation | 'status' | 'failureCode' | 'updatedAt'>>;
  failureCode?: FailureCode;
  /** Work to schedule in the same step (e.g. the payment submit after `authorized`). */
  schedule?: { member: string; at: number };
  /** Made only while these fields still hold what was read, else 'conflict' (TransitionRequest.whileUnchanged). */
  whileUnchanged?: Pick<PaymentRecord, 'bankCalledAt'>;
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

  /**
   * The event log entry (the body is rebuilt from it and the payment, see event-log.ts) and
   * its deliveries; the script puts the event's position where the members have '#'.
   */
  function buildEvent(next: PaymentRecord, now: number) {
    const entry = encodeEventEntry({
      status: next.status,
      failureCode: next.failureCode,
      at: now,
    });
    const deliveries: string[] = [];
    if (webhookEventType(next.status) !== null) {
      if (deps.webhookTargets.global) deliveries.push(workItem.hook(next.id, '#', 'g'));
      if (next.callbackUrl) deliveries.push(workItem.hook(next.id, '#', 'c'));
    }
    return { entry, deliveries };
  }

  return {
    async create(record, firstWork) {
      // The record's own time: its first event and stored updated_at are what the checkout answered
      // (and equal to created_at, which the payment hash then need not store twice).
      const now = record.updatedAt;
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
      if (terminal) {
        // tokens are kept only until used
        fields.sealedAccessToken = null;
        fields.heldToken = null;
      }
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
        ...(options.whileUnchanged ? { whileUnchanged: options.whileUnchanged } : {}),
      });
    },
  };
}
