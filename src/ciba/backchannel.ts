import { randomUUID } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { inSpan, SpanKind, traceHeaders } from '../tracing.js';
import type { ClientAuthentication, SigningKey } from './client-auth.js';
import { SignJWT } from 'jose';
import type { BankMetadata } from './discovery.js';
import { discardBody, parseRetryAfterSeconds, readJsonObject, readOAuthError } from './http-response.js';
import { BackchannelError, type BackchannelRequestInput, type BackchannelStarted } from './types.js';

/** CIBA Core §7.3: `interval` defaults to 5 seconds when the bank sends none. */
export const DEFAULT_POLL_INTERVAL_SECONDS = 5;
/** Signed request objects live at most this long (CIBA Core §7.1.1 asks for a short lifetime; FAPI-CIBA ≤ 60 min). */
const REQUEST_OBJECT_LIFETIME_SECONDS = 300;

export interface BackchannelDeps {
  config: Pick<Config, 'bank' | 'ciba'>;
  agent: Dispatcher;
  clock: Clock;
  clientAuth: ClientAuthentication;
  signingKey: SigningKey | undefined;
}

/**
 * Builds the authentication request parameters (CIBA Core §7.1), as plain form fields or, when
 * configured, as one signed request object (§7.1.1) carrying them as claims.
 * @see https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#auth_request
 */
export async function buildBackchannelBody(
  deps: BackchannelDeps,
  metadata: BankMetadata,
  input: BackchannelRequestInput,
): Promise<string> {
  const { config, clientAuth } = deps;
  const params: Record<string, string | number | object> = {
    scope: config.ciba.scope,
    login_hint: input.loginHint,
    binding_message: input.bindingMessage,
    requested_expiry: input.requestedExpiry,
  };
  if (input.authorizationDetails.length > 0) params.authorization_details = input.authorizationDetails;
  if (input.claims) params.claims = input.claims;
  if (config.ciba.deliveryMode === 'ping') {
    if (!input.clientNotificationToken) throw new TypeError('ping mode needs a client_notification_token');
    params.client_notification_token = input.clientNotificationToken;
  }
  const form = new URLSearchParams();
  if (config.ciba.signedRequest) {
    form.set('request', await signRequestObject(deps, metadata, params));
  } else {
    for (const [name, value] of Object.entries(params)) {
      form.set(name, typeof value === 'string' ? value : JSON.stringify(value));
    }
  }
  const fresh = clientAuth.freshBody ? await clientAuth.freshBody() : '';
  return form.toString() + clientAuth.staticBody + fresh;
}

/**
 * A signed authentication request: iss = client_id, aud = issuer, iat/nbf/exp/jti, lifetime well
 * under 60 minutes, alg as configured and advertised by the bank.
 * @see https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#signed_auth_request
 */
export async function signRequestObject(
  deps: BackchannelDeps,
  metadata: BankMetadata,
  params: Record<string, unknown>,
): Promise<string> {
  const { config, signingKey, clock } = deps;
  if (!signingKey) throw new TypeError('signed requests need BANK_SIGNING_KEY');
  const advertised = metadata.requestObjectSigningAlgs;
  if (advertised && !advertised.includes(signingKey.alg)) throw new TypeError('bank does not accept our request alg');
  const now = Math.floor(clock.now() / 1000);
  return new SignJWT(params)
    .setProtectedHeader({ alg: signingKey.alg, kid: signingKey.kid, typ: 'JWT' })
    .setIssuer(config.bank.clientId)
    .setAudience(metadata.issuer)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + REQUEST_OBJECT_LIFETIME_SECONDS)
    .setJti(randomUUID())
    .sign(signingKey.key);
}

/** CIBA Core §7.1: sends the request; throws BackchannelError for every answer but a valid success. */
export async function startBackchannelAuthentication(
  deps: BackchannelDeps,
  metadata: BankMetadata,
  input: BackchannelRequestInput,
): Promise<BackchannelStarted> {
  const body = await buildBackchannelBody(deps, metadata, input);
  const endpoint = metadata.backchannelAuthenticationEndpoint;
  const attributes = { 'http.request.method': 'POST', 'server.address': endpoint.hostname };
  return inSpan('ciba backchannel_authentication', { kind: SpanKind.CLIENT, attributes }, async (span) => {
    let response: Dispatcher.ResponseData;
    try {
      response = await deps.agent.request({
        origin: endpoint.origin,
        path: endpoint.pathname + endpoint.search,
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          'x-request-id': input.requestId ?? randomUUID(),
          ...traceHeaders(),
          ...deps.clientAuth.headers,
        },
        body,
      });
    } catch (cause) {
      throw new BackchannelError('bank_unavailable', `backchannel request failed: ${describeNetworkError(cause)}`);
    }
    span.setAttribute('http.response.status_code', response.statusCode);
    return processBackchannelResponse(response, deps.clock.now(), input.requestedExpiry);
  });
}

/**
 * CIBA Core §7.3: `expires_in` is a "positive integer" and `interval` a positive integer (seconds).
 * Fractions, strings and zero are malformed: an interval under one second would have us poll
 * the bank in a tight loop, and a fraction of a second is no interval at all.
 */
const positiveSeconds = z.number().int().positive();
const successSchema = z.object({
  auth_req_id: z.string().min(1),
  expires_in: positiveSeconds,
  interval: positiveSeconds.optional(),
});

/**
 * Checks every field of the answer it reads (CIBA Core §7.3) and maps errors (§13) to stable codes.
 * @see https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#auth_error_response
 */
export async function processBackchannelResponse(
  response: Dispatcher.ResponseData,
  nowMs: number,
  requestedExpiry: number,
): Promise<BackchannelStarted> {
  const status = response.statusCode;
  if (status === 429 || status >= 500) {
    await discardBody(response);
    const retryAfter = parseRetryAfterSeconds(response.headers['retry-after'], nowMs);
    throw new BackchannelError('bank_unavailable', `bank answered ${status}`, undefined, retryAfter);
  }
  const body = await readJsonObject(response).catch(() => undefined);
  if (status === 200) {
    const parsed = successSchema.safeParse(body);
    if (!parsed.success) throw new BackchannelError('bank_invalid_response', 'malformed backchannel answer');
    const { auth_req_id: authReqId, expires_in: expiresIn, interval } = parsed.data;
    // The payment expires at the earlier of the bank's expires_in and what we asked for (DESIGN.md):
    // a bank answering a longer life cannot keep a checkout open past CIBA_REQUESTED_EXPIRY.
    return {
      authReqId,
      expiresIn: Math.min(expiresIn, requestedExpiry),
      interval: interval ?? DEFAULT_POLL_INTERVAL_SECONDS,
    };
  }
  const bankError = readOAuthError(body);
  if (!bankError) {
    const code = status === 401 ? 'bank_client_error' : 'bank_invalid_response';
    throw new BackchannelError(code, `bank answered ${status} without an OAuth error`);
  }
  throw new BackchannelError(mapBackchannelError(bankError.error), `bank refused: ${bankError.error}`, bankError);
}

/** The bank's `error` → our stable code (CIBA Core §13). */
export function mapBackchannelError(
  error: string,
): 'unknown_bank_user' | 'bank_request_rejected' | 'bank_client_error' {
  switch (error) {
    case 'unknown_user_id':
      return 'unknown_bank_user';
    case 'invalid_client':
    case 'unauthorized_client':
      return 'bank_client_error';
    // invalid_request, invalid_scope, expired_login_hint_token, access_denied, invalid_binding_message,
    // missing_user_code, invalid_user_code, and anything new: a definite no to this request
    default:
      return 'bank_request_rejected';
  }
}

/** A network error's code only (never its message, which may quote request data). */
export function describeNetworkError(cause: unknown): string {
  if (typeof cause === 'object' && cause !== null && 'code' in cause && typeof cause.code === 'string') {
    return cause.code;
  }
  return cause instanceof Error ? cause.name : 'unknown error';
}
