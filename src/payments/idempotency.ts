/**
 * The port the checkout use case needs to answer a retried request exactly as the first time
 * (IETF draft-ietf-httpapi-idempotency-key-header). src/store/idempotency-store.ts implements it.
 */

export type IdempotencyClaim =
  { state: 'new' } | { state: 'in_flight' } | { state: 'mismatch' } | { state: 'replay'; response: StoredResponse };

/** A response as it was sent, kept for replay. */
export interface StoredResponse {
  status: number;
  body: string;
  location: string | null;
}

export interface IdempotencyStore {
  /** Claims (scope, key) for a request with this body fingerprint, or tells why it cannot run. */
  claim(scope: string, key: string, fingerprint: string): Promise<IdempotencyClaim>;
  /** Stores the final response for replay. */
  complete(scope: string, key: string, response: StoredResponse): Promise<void>;
  /** Forgets the claim (the request failed in a way worth retrying, such as a 503). */
  release(scope: string, key: string): Promise<void>;
}
