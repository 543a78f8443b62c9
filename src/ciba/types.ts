/**
 * The contract between the CIBA client (src/ciba) and its callers (src/payments, src/jobs).
 * Nothing here knows about Redis or HTTP routes.
 */

/** RFC 9396 authorization_details entry for a payment, as sent in the backchannel request. */
export interface PaymentInitiationDetail {
  type: 'payment_initiation';
  instructedAmount: { currency: string; amount: string };
  creditorName: string;
  creditorAccount: { iban: string };
  remittanceInformationUnstructured: string;
}

export interface BackchannelRequestInput {
  loginHint: string;
  bindingMessage: string;
  requestedExpiry: number;
  /** Sent when non-empty (a profile whose consent describes the payment sends none). */
  authorizationDetails: PaymentInitiationDetail[];
  /** The OIDC `claims` parameter (OIDC Core §5.5), e.g. Open Banking UK's essential openbanking_intent_id. */
  claims?: Record<string, unknown>;
  /** Ping mode only: a fresh random token (≥128 bits) for this request. */
  clientNotificationToken?: string;
  /** Passed to the bank as X-Request-Id for tracing. */
  requestId?: string;
}

/** A successful backchannel authentication response (CIBA Core §7.3). */
export interface BackchannelStarted {
  authReqId: string;
  /** Seconds. */
  expiresIn: number;
  /** Seconds; the bank's `interval`, or 5 when it sent none (CIBA Core §7.3). */
  interval: number;
}

/** Stable codes the backchannel step can fail with; the checkout maps them to HTTP answers. */
export type BackchannelFailureCode =
  | 'unknown_bank_user' // unknown_user_id → 422
  | 'bank_request_rejected' // invalid_request, invalid_binding_message, expired_login_hint_token, access_denied… → 422
  | 'bank_client_error' // invalid_client, unauthorized_client: our configuration is wrong → 502
  | 'bank_invalid_response' // malformed answer → 502
  | 'bank_unavailable'; // 5xx, 429, network fault, timeout → 503 with Retry-After

export class BackchannelError extends Error {
  override readonly name = 'BackchannelError';
  constructor(
    readonly code: BackchannelFailureCode,
    message: string,
    /** The bank's own `error` and `error_description`, kept as data (never rendered verbatim to the storefront). */
    readonly bankError?: { error: string; errorDescription?: string },
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** What the payment is expected to be, checked against the ID token and token response. */
export interface TokenExpectation {
  authReqId: string;
  authorizationDetails: PaymentInitiationDetail[];
  /** The consent the ID token's openbanking_intent_id must name (Open Banking UK profile). */
  intentId?: string;
}

/** Failure codes the token step can end a payment with (DESIGN.md failure codes). */
export type TokenFailureCode =
  'access_denied' | 'expired' | 'invalid_id_token' | 'authorization_mismatch' | 'authorization_error';

/** The outcome of one token request (CIBA Core §10, §11); one exhaustive switch maps the bank's answers to these. */
export type TokenOutcome =
  | { kind: 'pending' } // authorization_pending: poll again after `interval`
  | { kind: 'slow_down' } // slow_down: interval += 5 s for every later poll
  | { kind: 'retry'; reason: string; retryAfterMs?: number } // 429/503/5xx/network: back off with jitter, never past expiry
  | { kind: 'failed'; failureCode: TokenFailureCode; error: string } // final: the auth_req_id is never sent again
  | { kind: 'authorized'; accessToken: string; accessTokenExpiresIn?: number; subject: string };

export interface CibaClient {
  /** Fetches (or re-uses) discovery metadata; rejects while the bank's metadata cannot be had. */
  ensureDiscovered(): Promise<void>;
  /** True once discovery has succeeded at least once. */
  isReady(): boolean;
  /** CIBA Core §7.1. Throws BackchannelError. */
  startBackchannelAuthentication(input: BackchannelRequestInput): Promise<BackchannelStarted>;
  /**
   * CIBA Core §10.1: one token request for the auth_req_id. On success the ID token is validated
   * (signature, alg, iss, aud/azp, exp, iat, auth_req_id claim) and any returned authorization_details
   * compared with the expected ones before `authorized` is returned. Never throws for bank answers.
   */
  requestToken(expect: TokenExpectation): Promise<TokenOutcome>;
  close(): Promise<void>;
}
