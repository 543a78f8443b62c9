import { createHash } from 'node:crypto';

/**
 * Every Redis key of the sandbox bank, built in one place under the sandbox's own prefix, so a
 * test can remove a run's state with one SCAN and two sandboxes never share state by accident.
 */
export interface SandboxKeys {
  /** oidc-provider model instances: `oidc:<Model>:<id>`. */
  oidcModel(model: string, id: string): string;
  /** Set of model keys that belong to one grant, for revokeByGrantId. */
  oidcGrant(grantId: string): string;
  oidcUserCode(userCode: string): string;
  oidcUid(uid: string): string;
  /** Set of the client ids registered at the last start. */
  oidcClientIndex(): string;
  /** The OP's private signing JWKS, kept so that a restart keeps the same `kid` and key. */
  jwks(): string;
  cookieKeys(): string;
  /** One authentication request as the bank app shows it. */
  request(id: string): string;
  /** SET NX marker: the first decision on a request wins. */
  requestDecision(id: string): string;
  /** Sorted set of request ids, scored by creation time. */
  requestIndex(): string;
  /** Poll bookkeeping for slow_down, keyed by a hash of the auth_req_id (never the id itself). */
  poll(authReqId: string): string;
  /** Stored answer of the payment API for one client and Idempotency-Key. */
  paymentIdempotency(clientId: string, idempotencyKey: string): string;
  transfers(): string;
  /** Which Idempotency-Key an access token (its jti) was spent on: one approval pays once. */
  spentToken(tokenId: string): string;
  failNextPayments(): string;
  appSession(sessionId: string): string;
  /** Open Banking UK resources: a domestic-payment consent, a domestic payment, and a POST's stored answer. */
  obConsent(consentId: string): string;
  obPayment(paymentId: string): string;
  obIdempotency(clientId: string, resource: string, idempotencyKey: string): string;
}

/** A stable, non-reversible short name for a secret-ish value (auth_req_id, idempotency key). */
export function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

export function createSandboxKeys(prefix: string): SandboxKeys {
  return {
    oidcModel: (model, id) => `${prefix}oidc:${model}:${id}`,
    oidcGrant: (grantId) => `${prefix}oidc:grant:${grantId}`,
    oidcUserCode: (userCode) => `${prefix}oidc:userCode:${userCode}`,
    oidcUid: (uid) => `${prefix}oidc:uid:${uid}`,
    oidcClientIndex: () => `${prefix}oidc:clients`,
    jwks: () => `${prefix}jwks`,
    cookieKeys: () => `${prefix}cookie-keys`,
    request: (id) => `${prefix}request:${id}`,
    requestDecision: (id) => `${prefix}request-decision:${id}`,
    requestIndex: () => `${prefix}requests`,
    poll: (authReqId) => `${prefix}poll:${digest(authReqId)}`,
    paymentIdempotency: (clientId, key) => `${prefix}payment:${digest(clientId)}:${digest(key)}`,
    transfers: () => `${prefix}transfers`,
    spentToken: (tokenId) => `${prefix}spent-token:${digest(tokenId)}`,
    failNextPayments: () => `${prefix}fail-next-payments`,
    appSession: (sessionId) => `${prefix}app-session:${digest(sessionId)}`,
    obConsent: (consentId) => `${prefix}ob:consent:${consentId}`,
    obPayment: (paymentId) => `${prefix}ob:payment:${paymentId}`,
    obIdempotency: (clientId, resource, key) => `${prefix}ob:idem:${digest(clientId)}:${resource}:${digest(key)}`,
  };
}
