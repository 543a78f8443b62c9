import { AppError } from '../errors.js';
import type { PaymentStore } from './ports.js';
import { toPaymentView, type PaymentView } from './payment.js';
import type { StateMachine } from './state-machine.js';

export interface CancelPaymentDeps {
  store: PaymentStore;
  stateMachine: StateMachine;
}

/**
 * Cancels a payment before the bank is asked to move money. Polling stops at once (the transition
 * drops the poll and submit work); once `processing`, it is too late: 409.
 */
export function createCancelPayment(deps: CancelPaymentDeps): (paymentId: string) => Promise<PaymentView> {
  return async (paymentId) => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await deps.store.get(paymentId);
      if (!current) throw new AppError('payment_not_found', 'No such payment.');
      if (current.status === 'canceled') return toPaymentView(current);
      if (current.status !== 'pending_authorization' && current.status !== 'authorized') {
        throw new AppError(
          'payment_not_cancelable',
          `A payment in status ${current.status} can no longer be canceled.`,
        );
      }
      if ((await deps.stateMachine.transition(current, 'canceled')) === 'ok') {
        return toPaymentView((await deps.store.get(paymentId)) ?? current);
      }
      // The status moved under us (approved at this moment): look again.
    }
    throw new AppError('payment_busy', 'The payment is changing right now; try again.');
  };
}
