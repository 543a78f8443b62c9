/**
 * The port that decides whether a checkout may ask the bank at all: rate limits per client address
 * and per customer, and the customer's pending requests and cool-down (issue 11.6, push bombing).
 * src/store/checkout-admission.ts implements it on Redis.
 */
export interface CheckoutAdmission {
  /**
   * Admits one checkout or throws an AppError (`rate_limited` 429, `checkout_pending` 409,
   * `customer_cooling_down` 429). `clientAddress` is null for the shop's own backend, which is not
   * limited per address (its one address serves every customer).
   */
  admit(request: { clientAddress: string | null; customerKey: string }): Promise<AdmissionTicket>;
}

/** A place held for one checkout: confirmed with the payment the bank accepted, else released. */
export interface AdmissionTicket {
  confirm(paymentId: string, expiresAt: number): Promise<void>;
  release(): Promise<void>;
}
