import type { Consent, DomesticPayment } from './ob-resources.js';

/** OBWriteDomesticConsentResponse5: a consent as the API answers it. */
export function consentView(base: string, consent: Consent) {
  return {
    Data: {
      ConsentId: consent.consentId,
      CreationDateTime: consent.created,
      Status: consent.status,
      StatusUpdateDateTime: consent.updated,
      Initiation: consent.initiation,
    },
    Risk: consent.risk,
    Links: { Self: `${base}/domestic-payment-consents/${consent.consentId}` },
    Meta: {},
  };
}

/** OBWriteDomesticResponse5: a domestic payment as the API answers it. */
export function paymentView(base: string, payment: DomesticPayment) {
  return {
    Data: {
      DomesticPaymentId: payment.paymentId,
      ConsentId: payment.consentId,
      CreationDateTime: payment.created,
      Status: payment.status,
      StatusUpdateDateTime: payment.updated,
      Initiation: payment.initiation,
    },
    Links: { Self: `${base}/domestic-payments/${payment.paymentId}` },
    Meta: {},
  };
}
