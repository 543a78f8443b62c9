/**
 * The ports of the payment use cases: what they need from the outside world, as interfaces that
 * `src/store`, `src/ciba`, `src/bank` and `src/crypto` implement. Nothing here knows about Redis,
 * HTTP routes or undici; the use cases in this folder import only these.
 */
import type { PaymentRecord, PaymentStatus, SpentGrant } from './payment.js';
import type { FixedAtCreation } from './event-log.js';

// ---------------------------------------------------------------------------------------------
// Payment repository (src/store/payment-store.ts)

/** The few fields a token poll needs: read by the claim of its work item (scheduler prefetch), or with one HMGET. */
export interface PollFields {
  status: PaymentStatus | null;
  authReqId: string | null;
  intervalMs: number;
  expiresAt: number;
  attempts: number;
  amount: number;
  currency: string;
  /** The consent the ID token must name (openbanking_intent_id), when the profile has one. */
  bankConsentId: string | null;
  /** A token response received but not yet validated (see TokenOutcome `unverified`). */
  heldToken: string | null;
  /** A taken-over poll heard the auth_req_id is spent: fail at `failAt` unless recorded meanwhile (PaymentRecord). */
  spentGrant: SpentGrant | null;
}

export interface TransitionRequest {
  id: string;
  /** Statuses the payment must be in (`null` = must not exist yet). */
  from: readonly PaymentStatus[] | null;
  to: PaymentStatus;
  fields: Partial<PaymentRecord>;
  /** The event log entry and its webhook work items ('#' in a member = the event's position). */
  event: { entry: string; deliveries: string[] } | null;
  schedule: { member: string; at: number } | null;
  unschedule: string[];
  terminal: boolean;
  now: number;
  /**
   * A fence: the move is made only while `bankCalledAt` is still the value read (null: still none),
   * else 'conflict'. A bank call noted meanwhile must get its own in-flight grace first.
   */
  whileUnchanged?: Pick<PaymentRecord, 'bankCalledAt'>;
}

export type TransitionResult = 'ok' | 'not_found' | 'conflict';

/** What PaymentStore.recordBankCall found. */
export type BankCallNote = 'noted' | 'not_replicated' | 'not_processing';

/** Fields a use case may update outside a transition: never those of the payment view (events are rebuilt from them). */
export type MutableFields = Partial<Omit<PaymentRecord, FixedAtCreation | 'status' | 'failureCode' | 'updatedAt'>>;

export interface PaymentStore {
  get(id: string): Promise<PaymentRecord | null>;
  /** Several payments at once (one round trip with auto-pipelining); null where one is gone. */
  getMany(ids: readonly string[]): Promise<(PaymentRecord | null)[]>;
  getPollFields(id: string): Promise<PollFields>;
  /**
   * Writes notes while the payment exists ('not_found' when not) and, with `whileIn`, only while its
   * status is one of those ('conflict' when not): a note that must not outlive the payment's wait
   * (a held token) is then never written onto a payment that ended meanwhile, nor again after it.
   */
  update(id: string, fields: MutableFields, whileIn?: readonly PaymentStatus[]): Promise<TransitionResult>;
  transition(request: TransitionRequest): Promise<TransitionResult>;
  /**
   * Records that a bank payment call is about to be made (`bankCalledAt`), only while the payment is
   * `processing`. 'noted' once that write, and with it everything written to the payment before (the
   * access token, `processing`), is on the replicas the deployment requires (REDIS_WAIT_REPLICAS);
   * 'not_replicated' when fewer acknowledged it in time (a failover could forget the call ever was);
   * 'not_processing' when the payment ended or is gone (reconciliation may have settled it on the
   * notes it read). Only after 'noted' may the call be made.
   */
  recordBankCall(id: string, at: number): Promise<BankCallNote>;
  /** The W3C traceparent stored at creation (tracing on), for the worker's spans of this payment. */
  getTraceparent(id: string): Promise<string | null>;
  /**
   * Settles a creation in doubt (its reply lost, or it may still land late): the payment when it
   * exists; else null, and its id is voided so that no create of it can ever succeed.
   */
  voidUnlessCreated(id: string): Promise<PaymentRecord | null>;
}

/** Ping mode: which payment a client_notification_token (its SHA-256) belongs to. */
export interface NotificationStore {
  remember(tokenHash: string, paymentId: string, ttlSeconds: number): Promise<void>;
  find(tokenHash: string): Promise<string | null>;
}

/** Moving scheduled work (src/jobs/scheduler.ts implements it). */
export interface WorkScheduler {
  /**
   * Moves waiting work earlier and wakes the workers that claim it (one step), or marks leased work
   * due at once when settled; false when neither.
   */
  advance(member: string, at: number): Promise<boolean>;
  /** Tells the idle workers that claim the member's work to look now. */
  wake(member: string): Promise<void>;
}

/**
 * What a use case wants next for its work item: nothing more, or to run again at a time (ms).
 * `followUp` says the step left other work due now (the bank submission after a token), so the
 * worker should look at once rather than after its usual gap between claims.
 */
export type NextStep = { done: true; followUp?: true } | { at: number };

// ---------------------------------------------------------------------------------------------
// Checkout admission (src/store/checkout-admission.ts)

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
  /**
   * Keeps the customer's place for a payment found by another request than the one that held it (a
   * retry that took its claim over): the place then ends with the payment, not with the lost hold.
   */
  keep(request: { customerKey: string; paymentId: string; expiresAt: number }): Promise<void>;
}

/** A place held for one checkout: confirmed with the payment the bank accepted, else released. */
export interface AdmissionTicket {
  confirm(paymentId: string, expiresAt: number): Promise<void>;
  release(): Promise<void>;
  /**
   * The request never reached the bank (the store refused it first): its place and the limit points
   * it took are given back, so a shop retrying through a store outage is not left rate limited.
   */
  refund(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Sealing at rest (src/crypto/sealing.ts)

/** Seals values with the deployment's keys; `context` binds a value to its payment and field. */
export interface Sealer {
  seal(plain: string, context: string): string;
  /** Throws when the value cannot be opened (unknown key, tampered, or another payment's). */
  open(sealed: string, context: string): string;
}

/** Where a sealed value of a payment belongs (the AES-GCM additional data). */
export function sealContext(paymentId: string, field: 'token' | 'held_token'): string {
  return `${paymentId}/${field}`;
}

// ---------------------------------------------------------------------------------------------
// Bank payment API (src/bank)

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
  /** The bank's answer for this payment: rejected (a 2xx `rejected`, or a 4xx saying `status: rejected`). */
  | { kind: 'rejected'; reason: string }
  /** A definite 4xx refusal of the request itself (401 expired token, 403, 400): the payment was not looked at. */
  | { kind: 'refused'; reason: string }
  /** No definite answer (5xx, 408/409/425/429, network fault, timeout, unreadable answer): it may have been booked. */
  | { kind: 'retry'; reason: string; retryAfterMs?: number }
  /**
   * The bank created the payment but has not settled it yet (Open Banking UK Pending,
   * AcceptedSettlementInProcess): the caller keeps it `processing` and asks `paymentStatus` later.
   * The sandbox client never answers this.
   */
  | { kind: 'pending'; bankPaymentId: string; retryAfterMs?: number };

/** One payment as the bank's reconciliation lookup lists it (DESIGN.md "Reconciliation"). */
export interface BookedPayment {
  bankPaymentId: string;
  status: string;
  endToEndId: string;
}

export type BankLookupOutcome =
  { kind: 'found'; payments: BookedPayment[] } | { kind: 'unavailable'; reason: string; retryAfterMs?: number };

export interface BankClient {
  createPayment(request: BankPaymentRequest): Promise<BankPaymentOutcome>;
  /**
   * The status of a payment the bank answered `pending` for; only clients that can answer
   * `pending` implement it. Never `pending` → anything but the statuses above.
   */
  paymentStatus?(request: { bankPaymentId: string; paymentId: string }): Promise<BankPaymentOutcome>;
  /**
   * Reconciliation: the payments the bank booked with this end-to-end id (sandbox profile: mTLS, no
   * bearer token). `known` helps a profile without a search by end-to-end id (Open Banking UK).
   */
  findPayment(
    endToEndId: string,
    known?: { bankPaymentId: string | null; consentId: string | null },
  ): Promise<BankLookupOutcome>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// CIBA client (src/ciba)

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
  /** invalid_client / unauthorized_client: our credentials were refused (a certificate rotation, a clock step); retried with an alarm. */
  | { kind: 'client_rejected'; error: 'invalid_client' | 'unauthorized_client' }
  | { kind: 'failed'; failureCode: TokenFailureCode; error: string } // final: the auth_req_id is never sent again
  /** A token was issued but the bank's keys could not be fetched to check it: keep it and validate again later. */
  | { kind: 'unverified'; response: ReceivedTokenResponse; reason: string }
  | { kind: 'authorized'; accessToken: string; accessTokenExpiresIn?: number; subject: string };

/**
 * A successful token response as received (CIBA Core §10.1.1), before its ID token is validated. A
 * token is issued once, so when it cannot be validated now it is kept (sealed) and validated later.
 */
export interface ReceivedTokenResponse {
  accessToken: string;
  idToken: string;
  expiresIn?: number;
  /** As the bank sent them (RFC 9396 §7); compared with what was asked. */
  authorizationDetails?: unknown;
  /** When it was received (ms): the ID token's exp and iat are judged at this time. */
  receivedAt: number;
}

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
   * compared with the expected ones (required unless CIBA_REQUIRE_GRANTED_DETAILS=false) before `authorized` is returned. Never throws for bank answers.
   */
  requestToken(expect: TokenExpectation): Promise<TokenOutcome>;
  /** Validates a token response kept from an earlier `unverified` outcome; sends nothing to the token endpoint. */
  validateReceivedToken(response: ReceivedTokenResponse, expect: TokenExpectation): Promise<TokenOutcome>;
  close(): Promise<void>;
}
