import { formatMinorUnits } from './amounts.js';
import type { PaymentInitiationDetail } from './ports.js';

/** The merchant that receives every payment (MERCHANT_NAME, MERCHANT_IBAN). */
export interface Merchant {
  name: string;
  iban: string;
}

/** What the customer approves (RFC 9396), derived from the payment alone so every step computes the same. */
export function authorizationDetailsFor(
  payment: { id: string; amount: number; currency: string },
  merchant: Merchant,
): PaymentInitiationDetail[] {
  return [
    buildPaymentInitiationDetail({
      amount: payment.amount,
      currency: payment.currency,
      creditorName: merchant.name,
      creditorIban: merchant.iban,
      remittanceInformation: remittanceFor(payment.id),
    }),
  ];
}

export function remittanceFor(paymentId: string): string {
  return `Order ${paymentId}`;
}

export interface PaymentForAuthorization {
  /** Minor units. */
  amount: number;
  /** Lower-case ISO 4217. */
  currency: string;
  creditorName: string;
  creditorIban: string;
  remittanceInformation: string;
}

export function buildPaymentInitiationDetail(payment: PaymentForAuthorization): PaymentInitiationDetail {
  return {
    type: 'payment_initiation',
    instructedAmount: {
      currency: payment.currency.toUpperCase(),
      amount: formatMinorUnits(payment.amount, payment.currency),
    },
    creditorName: payment.creditorName,
    creditorAccount: { iban: payment.creditorIban },
    remittanceInformationUnstructured: payment.remittanceInformation,
  };
}
