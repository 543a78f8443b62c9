import { errors } from 'oidc-provider';
import type { Consent, ObResources } from './ob-resources.js';

/**
 * How the sandbox OP binds a CIBA request to an Open Banking consent: the (signed) request asks for
 * the `openbanking_intent_id` claim with the consent id as its value (OIDC Core §5.5.1, OB CIBA
 * profile), which must name an AwaitingAuthorisation consent of the same client. On approval the
 * consent becomes Authorised, on denial Rejected; the ID token and the access token then carry the
 * intent id, and the payment API only takes that access token for that consent.
 */
export const INTENT_ID_CLAIM = 'openbanking_intent_id';

/** The intent id requested in a `claims` parameter (object or JSON text), from id_token or userinfo. */
export function requestedIntentId(claims: unknown): string | undefined {
  let value: unknown = claims;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  if (typeof value !== 'object' || value === null) return undefined;
  for (const member of ['id_token', 'userinfo'] as const) {
    const requested = (value as Record<string, unknown>)[member];
    const claim =
      typeof requested === 'object' && requested !== null
        ? (requested as Record<string, unknown>)[INTENT_ID_CLAIM]
        : undefined;
    const id = typeof claim === 'object' && claim !== null ? (claim as { value?: unknown }).value : undefined;
    if (typeof id === 'string' && id.length > 0) return id;
  }
  return undefined;
}

/** Throws invalid_request unless the intent is an AwaitingAuthorisation consent of this client. */
export async function bindableConsent(resources: ObResources, clientId: string, intentId: string): Promise<Consent> {
  const consent = await resources.getConsent(intentId);
  if (consent?.clientId !== clientId)
    throw new errors.InvalidRequest('openbanking_intent_id names no consent of this client');
  if (consent.status !== 'AwaitingAuthorisation') {
    throw new errors.InvalidRequest(`openbanking_intent_id names a consent that is ${consent.status}`);
  }
  return consent;
}
