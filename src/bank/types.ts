/** The contract of the bank's payment API client (DESIGN.md "Payment API"). */

export interface BankPaymentRequest {
  accessToken: string;
  /** The payment id: the same key is sent on every retry, so the bank moves money at most once. */
  idempotencyKey: string;
  /** Decimal string in major units, e.g. "19.90". */
  amount: string;
  /** Upper-case ISO 4217, e.g. "EUR". */
  currency: string;
  creditor: { name: string; iban: string };
  remittanceInformation: string;
  endToEndId: string;
  /** The consent the customer authorised, for profiles that have one (Open Banking UK ConsentId). */
  consentId?: string;
  requestId?: string;
}

export type BankPaymentOutcome =
  | { kind: 'accepted'; bankPaymentId: string }
  | { kind: 'rejected'; reason: string } // a definite no (rejected status or any 4xx): bank_rejected
  | { kind: 'retry'; reason: string; retryAfterMs?: number } // 5xx, 429, network fault, timeout, malformed answer
  /**
   * The bank created the payment but has not settled it yet (Open Banking UK Pending,
   * AcceptedSettlementInProcess): the caller keeps it `processing` and asks `paymentStatus` later.
   * The sandbox client never answers this.
   */
  | { kind: 'pending'; bankPaymentId: string; retryAfterMs?: number };

export interface BankClient {
  createPayment(request: BankPaymentRequest): Promise<BankPaymentOutcome>;
  /**
   * The status of a payment the bank answered `pending` for; only clients that can answer
   * `pending` implement it. Never `pending` → anything but the statuses above.
   */
  paymentStatus?(request: { bankPaymentId: string; paymentId: string }): Promise<BankPaymentOutcome>;
  close(): Promise<void>;
}
