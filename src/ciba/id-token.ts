import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Dispatcher } from 'undici';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { isJsonContentType, readJsonObject } from './http-response.js';

export const AUTH_REQ_ID_CLAIM = 'urn:openid:params:jwt:claim:auth_req_id';
/** Open Banking UK: the consent the customer authorised, which must be the one we created. */
export const INTENT_ID_CLAIM = 'openbanking_intent_id';
/** OIDC Core leaves the iat window to the client; DESIGN.md fixes it at 5 minutes with 30 s skew. */
const MAX_ID_TOKEN_AGE_SECONDS = 300;
const CLOCK_SKEW_SECONDS = 30;
/** A JWKS refetch for an unknown `kid` happens at most this often, so forged kids cannot hammer the bank. */
const JWKS_REFETCH_MIN_INTERVAL_MS = 10_000;
/**
 * Keys older than this are fetched again before use, so a key the bank has withdrawn (compromised,
 * rotated out) stops being trusted within minutes (RFC 7517 has no expiry; jose's remote sets use 10 min).
 */
export const JWKS_MAX_AGE_MS = 10 * 60_000;

export class IdTokenError extends Error {
  override readonly name = 'IdTokenError';
}

/** The bank's keys could not be fetched (network, 5xx, no key set): nothing is known about the token yet. */
export class JwksUnavailableError extends Error {
  override readonly name = 'JwksUnavailableError';
}

/** The bank's signing keys, fetched over the bank Agent and cached. */
export interface JwksCache {
  /** Resolves the key for a JWS header, refetching once (rate-limited) on an unknown kid. */
  readonly resolveKey: JWTVerifyGetKey;
  /** Loads the keys if not loaded yet (used at discovery so token time rarely waits for them). */
  load(): Promise<void>;
  /** How many times the JWKS was fetched (for metrics and tests). */
  fetchCount(): number;
}

export function createJwksCache(deps: { agent: Dispatcher; clock: Clock; getJwksUri: () => Promise<URL> }): JwksCache {
  type KeySet = ReturnType<typeof createLocalJWKSet>;
  let keySet: KeySet | undefined;
  let loadedAt = Number.NEGATIVE_INFINITY;
  // Only refetches for an unknown kid are rate-limited: the first load must not block a rotation
  // seen seconds after start-up.
  let lastRefetchAt = Number.NEGATIVE_INFINITY;
  let lastRefetchFailed = false;
  let fetches = 0;
  let inFlight: Promise<KeySet> | undefined;

  const refresh = (): Promise<KeySet> => {
    inFlight ??= (async () => {
      fetches += 1;
      let jwks: JSONWebKeySet;
      try {
        jwks = await fetchJwks(deps.agent, await deps.getJwksUri());
      } catch (err) {
        throw new JwksUnavailableError(`bank keys unavailable: ${describeFetchError(err)}`, { cause: err });
      }
      keySet = createLocalJWKSet(jwks);
      loadedAt = deps.clock.now();
      return keySet;
    })().finally(() => (inFlight = undefined));
    return inFlight;
  };

  const resolveKey: JWTVerifyGetKey = async (header, token) => {
    const fresh = keySet !== undefined && deps.clock.now() - loadedAt < JWKS_MAX_AGE_MS;
    const current = fresh && keySet ? keySet : await refresh();
    try {
      return await current(header, token);
    } catch (err) {
      const unknownKid = err instanceof errors.JWKSNoMatchingKey;
      if (!unknownKid) throw err;
      if (deps.clock.now() - lastRefetchAt < JWKS_REFETCH_MIN_INTERVAL_MS) {
        // Rate-limited: when the last refetch failed, the key may well exist; that is not a bad token.
        if (lastRefetchFailed) throw new JwksUnavailableError('bank keys unavailable (refetch failed recently)');
        throw err;
      }
      // the bank may have rotated its keys (OIDC Core §10.1.1)
      lastRefetchAt = deps.clock.now();
      lastRefetchFailed = true;
      const refreshed = await refresh();
      lastRefetchFailed = false;
      return refreshed(header, token);
    }
  };

  return {
    resolveKey,
    load: async () => {
      if (!keySet) await refresh();
    },
    fetchCount: () => fetches,
  };
}

function describeFetchError(err: unknown): string {
  if (err instanceof IdTokenError) return err.message;
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.name : 'unknown error';
}

async function fetchJwks(agent: Dispatcher, uri: URL): Promise<JSONWebKeySet> {
  const response = await agent.request({
    origin: uri.origin,
    path: uri.pathname + uri.search,
    method: 'GET',
    headers: { accept: 'application/jwk-set+json, application/json' },
  });
  const body = await readJsonObject(response);
  if (response.statusCode !== 200 || !isJsonContentType(response.headers) || !body || !Array.isArray(body.keys)) {
    throw new IdTokenError(`JWKS answered ${response.statusCode} without a key set`);
  }
  return body as unknown as JSONWebKeySet;
}

export interface ValidatedIdToken {
  subject: string;
  claims: JWTPayload;
}

/**
 * Validates the ID token of a CIBA token response before any money moves.
 * jose checks the signature, the one allowed alg (so never `none`), `iss` exactly, that `aud`
 * contains our client id, `exp` (with skew) and that the required claims exist. jose has no `azp`
 * rule, and although it has `maxTokenAge`, we check the age of `iat` ourselves so the rule (5 min,
 * 30 s skew, not in the future) is stated in one place against the injected clock.
 * @see https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#id_token_validation
 * @see https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation
 */
export async function validateIdToken(
  deps: { bank: Config['bank']; jwks: JwksCache; clock: Clock },
  idToken: string,
  authReqId: string,
  intentId?: string,
): Promise<ValidatedIdToken> {
  const { bank, clock } = deps;
  const nowMs = clock.now();
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(idToken, deps.jwks.resolveKey, {
      algorithms: [bank.idTokenAlg],
      issuer: bank.issuer,
      audience: bank.clientId,
      clockTolerance: CLOCK_SKEW_SECONDS,
      currentDate: new Date(nowMs),
      requiredClaims: ['iss', 'aud', 'exp', 'iat', 'sub'],
    }));
  } catch (err) {
    if (err instanceof JwksUnavailableError) throw err;
    throw new IdTokenError(err instanceof errors.JOSEError ? err.code : 'ID token could not be verified');
  }
  assertIdTokenClaims(payload, bank.clientId, authReqId, Math.floor(nowMs / 1000));
  // An ID token for another consent is not about this payment, however valid it is otherwise.
  if (intentId !== undefined && payload[INTENT_ID_CLAIM] !== intentId) {
    throw new IdTokenError('openbanking_intent_id is not our consent');
  }
  return { subject: payload.sub as string, claims: payload };
}

/** The checks jose leaves to us: azp, the iat window, the auth_req_id claim and a usable sub. */
export function assertIdTokenClaims(payload: JWTPayload, clientId: string, authReqId: string, now: number): void {
  const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  // OIDC Core §3.1.3.7 items 4–5: several audiences need azp, and azp when present must be us
  if ((audiences.length > 1 || payload.azp !== undefined) && payload.azp !== clientId) {
    throw new IdTokenError('azp is not the client id');
  }
  const iat = payload.iat;
  if (typeof iat !== 'number' || iat > now + CLOCK_SKEW_SECONDS) throw new IdTokenError('iat is in the future');
  if (now - iat > MAX_ID_TOKEN_AGE_SECONDS + CLOCK_SKEW_SECONDS) throw new IdTokenError('iat is too old');
  const claim = payload[AUTH_REQ_ID_CLAIM];
  if (claim !== undefined && claim !== authReqId) throw new IdTokenError('auth_req_id claim does not match');
  if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new IdTokenError('sub is missing');
}
