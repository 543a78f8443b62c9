/**
 * The port the checkout use case needs to answer a retried request exactly as the first time
 * (IETF draft-ietf-httpapi-idempotency-key-header). src/store/idempotency-store.ts implements it.
 */

/** One request's claim on (scope, key): `owner` is random per request, and only it may end the claim. */
export interface ClaimRef {
  scope: string;
  key: string;
  owner: string;
}

/** The payment a claimed request is about to create, noted before the bank is asked. */
export interface NotedPayment {
  paymentId: string;
  clientSecret: string;
}

export type IdempotencyClaim =
  | { state: 'new' }
  | { state: 'in_flight' }
  | { state: 'mismatch' }
  | { state: 'replay'; response: StoredResponse }
  /** A noted claim whose owner outlived its hold, now this request's: it must settle the payment first. */
  | { state: 'unsettled'; noted: NotedPayment };

/** A response as it was sent, kept for replay. */
export interface StoredResponse {
  status: number;
  body: string;
  location: string | null;
}

/**
 * Every end of a claim acts only while the claim is still in flight and the caller's, so sending it
 * again after a lost reply never frees or overwrites a newer request's claim. An end that fails on a
 * store fault throws, and is tried again in the background (with backoff, for at most the claim's
 * hold): a failover must not leave the key in flight for the whole hold.
 */
export interface IdempotencyStore {
  /** Claims (scope, key) for a request with this body fingerprint, or tells why it cannot run. */
  claim(claim: ClaimRef, fingerprint: string): Promise<IdempotencyClaim>;
  /** Notes the payment about to be created; false when the claim is no longer the caller's (ask no bank). */
  note(claim: ClaimRef, payment: NotedPayment): Promise<boolean>;
  /** Stores the final response for replay; false when the claim is no longer the caller's (nothing stored). */
  complete(claim: ClaimRef, response: StoredResponse): Promise<boolean>;
  /** Forgets the claim (nothing was created: worth retrying); false when it is no longer the caller's. */
  release(claim: ClaimRef): Promise<boolean>;
}
