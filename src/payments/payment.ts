/** The payment: its statuses, failure codes, stored shape and the public view (DESIGN.md "The payment object"). */

export const PAYMENT_STATUSES = [
  'pending_authorization',
  'authorized',
  'processing',
  'succeeded',
  'failed',
  'canceled',
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const FAILURE_CODES = [
  'access_denied',
  'expired',
  'unknown_bank_user',
  'invalid_id_token',
  'authorization_mismatch',
  'bank_rejected',
  'bank_error',
  'authorization_error',
] as const;
export type FailureCode = (typeof FAILURE_CODES)[number];

export interface LineItem {
  sku: string;
  quantity: number;
  unitAmount: number;
}

/** What Redis holds for a payment (a hash of strings; see payment-store.ts for the field names). */
export interface PaymentRecord {
  id: string;
  status: PaymentStatus;
  amount: number;
  currency: string;
  items: LineItem[];
  bindingMessage: string;
  /** When the bank's authorization request expires (ms). */
  expiresAt: number;
  failureCode: FailureCode | null;
  createdAt: number;
  updatedAt: number;
  metadata: Record<string, string>;
  secretHash: string;
  authReqId: string | null;
  /** Current poll interval (ms), grown by slow_down. */
  intervalMs: number;
  callbackUrl: string | null;
  /** AES-256-GCM sealed access token, only between `authorized` and a terminal status. */
  sealedAccessToken: string | null;
  accessTokenExpiresAt: number | null;
  bankPaymentId: string | null;
  /** The bank's consent the customer authorises (Open Banking UK ConsentId); null for the sandbox profile. */
  bankConsentId?: string | null;
  /**
   * When the last payment call to the bank started (ms), written before the call: once set, an
   * attempt may have reached the bank, so a later refusal cannot prove that no money moved.
   */
  bankCalledAt: number | null;
  /** Since when the bank's outcome is unknown and only the reconciliation lookup may settle it (ms). */
  reconcileSince: number | null;
  /** A sealed token response received while the bank's keys could not be fetched; validated again later. */
  heldToken: string | null;
  /**
   * A taken-over poll heard that the auth_req_id is spent or expired, while the worker that held the
   * poll before may have the token and still be recording it: unless it does, the payment fails
   * with `failureCode` at `failAt` (ms). See payments/record-token-outcome.ts `awaitHolder`.
   */
  spentGrant?: SpentGrant | null;
  /** Consecutive retryable faults of the current step, for backoff. */
  attempts: number;
}

/** See PaymentRecord `spentGrant`. */
export interface SpentGrant {
  failureCode: FailureCode;
  failAt: number;
}

/** The payment as the storefront and the shop see it: never tokens, auth_req_id or secret hashes. */
export interface PaymentView {
  id: string;
  status: PaymentStatus;
  amount: number;
  currency: string;
  items: { sku: string; quantity: number; unit_amount: number }[];
  binding_message: string;
  expires_at: string;
  failure_code: FailureCode | null;
  created_at: string;
  updated_at: string;
  metadata: Record<string, string>;
}

export function toPaymentView(record: PaymentRecord): PaymentView {
  return {
    id: record.id,
    status: record.status,
    amount: record.amount,
    currency: record.currency,
    items: record.items.map((i) => ({ sku: i.sku, quantity: i.quantity, unit_amount: i.unitAmount })),
    binding_message: record.bindingMessage,
    expires_at: new Date(record.expiresAt).toISOString(),
    failure_code: record.failureCode,
    created_at: new Date(record.createdAt).toISOString(),
    updated_at: new Date(record.updatedAt).toISOString(),
    metadata: record.metadata,
  };
}

export const TERMINAL_STATUSES: ReadonlySet<PaymentStatus> = new Set(['succeeded', 'failed', 'canceled']);

export function isTerminal(status: PaymentStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}
