/**
 * The checkout-time seam of a bank profile. Some banks describe the payment in a resource of their
 * own before the customer is asked (Open Banking UK: a domestic-payment consent, whose id travels in
 * the CIBA request as `openbanking_intent_id`); the sandbox profile needs nothing and sends RFC 9396
 * authorization_details instead.
 */

export interface PaymentToAuthorize {
  id: string;
  /** Minor units. */
  amount: number;
  /** Lower-case ISO 4217. */
  currency: string;
}

export interface PreparedAuthorization {
  /** The bank's consent (intent) id, stored on the payment and checked in the ID token; null when none. */
  consentId: string | null;
  /** Added to the CIBA request as the OIDC `claims` parameter (OIDC Core §5.5), e.g. the essential intent id. */
  requestClaims?: Record<string, unknown>;
  /** False when the consent describes the payment, so no RFC 9396 authorization_details are sent. */
  sendAuthorizationDetails: boolean;
}

export interface BankProfile {
  /**
   * Runs before the backchannel request. Throws BackchannelError (src/ciba/types.ts) when the bank
   * refuses or cannot be reached, so the checkout answers as it would for the backchannel step.
   */
  prepareAuthorization(payment: PaymentToAuthorize): Promise<PreparedAuthorization>;
}

/** The sandbox profile: nothing to prepare, the payment is described by authorization_details. */
export const sandboxBankProfile: BankProfile = {
  prepareAuthorization: () => Promise.resolve({ consentId: null, sendAuthorizationDetails: true }),
};
