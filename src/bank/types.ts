/** The bank client's contract is a port of the payment use cases (src/payments/ports.ts). */
export type {
  BankClient,
  BankLookupOutcome,
  BankPaymentOutcome,
  BankPaymentRequest,
  BookedPayment,
} from '../payments/ports.js';
