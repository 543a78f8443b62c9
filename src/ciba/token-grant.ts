import type { Dispatcher } from 'undici';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { inSpan, SpanKind, traceHeaders, tracingActive } from '../tracing.js';
import { findAuthorizationMismatch } from './authorization-details.js';
import { describeNetworkError } from './backchannel.js';
import { pollConnectionsOf } from './bank-agent.js';
import { formEncode, type ClientAuthentication } from './client-auth.js';
import { CIBA_GRANT_TYPE, type BankMetadata } from './discovery.js';
import { isJsonContentType, parseJsonObject, parseRetryAfter, readOAuthError } from './http-response.js';
import { IdTokenError, JwksUnavailableError, validateIdToken, type JwksCache } from './id-token.js';
import type { ReceivedTokenResponse, TokenExpectation, TokenOutcome } from './types.js';
import { requestWhole, type WholeResponse } from './whole-response.js';
import { TOKEN_ERROR_CODES } from '../token-error-codes.js';

export interface TokenGrantDeps {
  config: Pick<Config, 'bank' | 'ciba'>;
  agent: Dispatcher;
  clock: Clock;
  clientAuth: ClientAuthentication;
  jwks: JwksCache;
}

/** The token errors CIBA Core §11 and RFC 6749 §5.2 define; anything else is `other`. */
type TokenErrorCode = (typeof TOKEN_ERROR_CODES)[number] | 'other';
const KNOWN_TOKEN_ERRORS: ReadonlySet<string> = new Set(TOKEN_ERROR_CODES);

// Shared, frozen answers for the hot path: thousands of pending polls a second allocate nothing new.
const PENDING: TokenOutcome = Object.freeze({ kind: 'pending' });
const SLOW_DOWN: TokenOutcome = Object.freeze({ kind: 'slow_down' });

/**
 * The one switch from the bank's token error to an outcome. Every outcome but pending, slow_down
 * and client_rejected is final: the caller never sends that auth_req_id again.
 * @see https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#token_error_response
 */
export function mapTokenError(error: string): TokenOutcome {
  const code: TokenErrorCode = KNOWN_TOKEN_ERRORS.has(error) ? (error as TokenErrorCode) : 'other';
  switch (code) {
    case 'authorization_pending':
      return PENDING;
    case 'slow_down':
      return SLOW_DOWN;
    case 'expired_token':
      return { kind: 'failed', failureCode: 'expired', error: code };
    case 'access_denied':
      return { kind: 'failed', failureCode: 'access_denied', error: code };
    // Our credentials refused (a certificate rotation, a clock step under private_key_jwt): nothing
    // was decided about the customer's grant, so it is asked again, with an alarm, while it is valid.
    case 'invalid_client':
    case 'unauthorized_client':
      return { kind: 'client_rejected', error: code };
    case 'invalid_grant':
    case 'invalid_request':
    case 'unsupported_grant_type':
      return { kind: 'failed', failureCode: 'authorization_error', error: code };
    case 'other':
      return { kind: 'failed', failureCode: 'authorization_error', error: sanitizeErrorCode(error) };
  }
}

/** Bank error codes are kept as data; cap them so a hostile answer cannot flood logs or Redis. */
function sanitizeErrorCode(error: string): string {
  return error.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
}

const URL_SAFE = /^[A-Za-z0-9._~-]+$/;

/**
 * Builds the token request for the discovered endpoint once: URL parts, headers and the static part
 * of the body are fixed, so a poll only appends the auth_req_id (and a fresh client assertion for
 * private_key_jwt). The answer is read whole without a body stream (whole-response.ts).
 * @see https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#token_request
 */
export function createTokenRequester(
  deps: TokenGrantDeps,
  metadata: BankMetadata,
): (expect: TokenExpectation) => Promise<TokenOutcome> {
  const { agent, clientAuth } = deps;
  const origin = metadata.tokenEndpoint.origin;
  const path = metadata.tokenEndpoint.pathname + metadata.tokenEndpoint.search;
  const headers = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
    ...clientAuth.headers,
  };
  const bodyPrefix = `grant_type=${formEncode(CIBA_GRANT_TYPE)}${clientAuth.staticBody}&auth_req_id=`;
  const freshBody = clientAuth.freshBody;
  const attributes = { 'http.request.method': 'POST', 'server.address': metadata.tokenEndpoint.hostname };
  // Not pipelined (the default): the poll's own connections, its request head built once (issue 12.4).
  const direct = pollConnectionsOf(agent, metadata.tokenEndpoint);
  const head = direct?.requestHead('POST', path, headers);
  return async function requestToken(expect) {
    const id = URL_SAFE.test(expect.authReqId) ? expect.authReqId : formEncode(expect.authReqId);
    const body = freshBody ? bodyPrefix + id + (await freshBody()) : bodyPrefix + id;
    if (!tracingActive()) return send(expect, body, headers, head);
    // Tracing on: one CLIENT span per poll, its traceparent sent to the bank; the outcome, never the token.
    return inSpan('ciba token', { kind: SpanKind.CLIENT, attributes }, async (span) => {
      const traced = { ...headers, ...traceHeaders() };
      const outcome = await send(expect, body, traced, direct?.requestHead('POST', path, traced));
      span.setAttribute('ciba.outcome', outcome.kind);
      return outcome;
    });
  };

  async function send(
    expect: TokenExpectation,
    body: string,
    sent: Record<string, string>,
    sentHead: string | undefined,
  ): Promise<TokenOutcome> {
    let response: WholeResponse;
    try {
      response =
        direct && sentHead !== undefined
          ? await direct.send(sentHead, body)
          : await requestWhole(agent, { origin, path, method: 'POST', headers: sent, body, ...PIPELINED });
    } catch (cause) {
      // nothing came back, so nothing was decided: polling again is safe (CIBA Core §10.1)
      return { kind: 'retry', reason: `network: ${describeNetworkError(cause)}` };
    }
    return processTokenResponse(deps, response, expect);
  }
}

/**
 * Lets undici pipeline polls on one connection (BANK_PIPELINING, off by default): `idempotent`, and
 * not `blocking` since the token endpoint answers at once (CIBA polls never hang). When a connection
 * breaks, the poll at its head is answered `retry`; undici would send the ones behind it again at once
 * on a new connection, which requestWhole refuses (ResendRefusedError), so they are `retry` too and
 * polled again at their interval: never early (CIBA Core §7.3), never after the bank has answered.
 */
const PIPELINED = { idempotent: true, blocking: false } as const;

/** The answer to nearly every poll, in the form most banks send it: recognised without parsing JSON. */
const PENDING_BODY = '{"error":"authorization_pending"}';

/** Maps one token endpoint answer to an outcome (CIBA Core §10.1.1, §11). Never throws. */
export async function processTokenResponse(
  deps: Pick<TokenGrantDeps, 'config' | 'clock' | 'jwks'>,
  response: WholeResponse,
  expect: TokenExpectation,
): Promise<TokenOutcome> {
  const status = response.statusCode;
  if (status === 200) return processTokenSuccess(deps, response, expect);
  if (status === 400 || status === 401 || status === 403) {
    if (status === 400 && response.text === PENDING_BODY) return PENDING;
    const bankError = readOAuthError(parseJsonObject(response.text));
    if (bankError) return mapTokenError(bankError.error);
  }
  // 429, 5xx, and answers that carry no OAuth error decide nothing about the grant: try again later
  const retryAfterMs = parseRetryAfter(response.headers['retry-after'], deps.clock.now());
  const reason = `http_${status}`;
  return retryAfterMs === undefined ? { kind: 'retry', reason } : { kind: 'retry', reason, retryAfterMs };
}

const tokenSuccessSchema = z.object({
  access_token: z.string().min(1),
  token_type: z.string(),
  id_token: z.string().min(1),
  expires_in: z.number().positive().optional(),
  authorization_details: z.unknown().optional(),
});

/**
 * A 200 we cannot read is still a 200: the bank has issued its token and consumed the auth_req_id,
 * so polling again could only earn invalid_grant, and re-sending an id after a final answer is
 * what we promise never to do. Such an answer (wrong content type, bad JSON, a missing or wrong
 * field, an unreadable body) therefore ends the payment as authorization_error; no money moves.
 * @see https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#successful_token_response
 */
async function processTokenSuccess(
  deps: Pick<TokenGrantDeps, 'config' | 'clock' | 'jwks'>,
  response: WholeResponse,
  expect: TokenExpectation,
): Promise<TokenOutcome> {
  const jsonType = isJsonContentType(response.headers);
  const body = parseJsonObject(response.text);
  const parsed = tokenSuccessSchema.safeParse(body);
  if (!jsonType || !parsed.success) return failed('authorization_error', 'invalid_token_response');
  const token = parsed.data;
  // DPoP-bound tokens need proofs on every call; this client only uses (mTLS-bound) Bearer tokens
  if (token.token_type.toLowerCase() !== 'bearer') return failed('authorization_error', 'unsupported_token_type');
  const received: ReceivedTokenResponse = {
    accessToken: token.access_token,
    idToken: token.id_token,
    receivedAt: deps.clock.now(),
    ...(token.expires_in === undefined ? {} : { expiresIn: token.expires_in }),
    ...(token.authorization_details === undefined ? {} : { authorizationDetails: token.authorization_details }),
  };
  return validateReceivedToken(deps, received, expect);
}

/**
 * Checks a received token response before any money moves: the ID token (judged at the time it was
 * received, so a check repeated later gives the same answer), then the granted authorization_details,
 * which RFC 9396 §7 says the AS MUST return and which must equal what the customer was asked to
 * approve. When the bank's keys cannot be fetched, nothing is decided: `unverified`, to be checked again.
 */
export async function validateReceivedToken(
  deps: Pick<TokenGrantDeps, 'config' | 'jwks'>,
  token: ReceivedTokenResponse,
  expect: TokenExpectation,
): Promise<TokenOutcome> {
  let subject: string;
  try {
    ({ subject } = await validateIdToken(
      { bank: deps.config.bank, jwks: deps.jwks, clock: { now: () => token.receivedAt } },
      token.idToken,
      expect.authReqId,
      expect.intentId,
    ));
  } catch (err) {
    if (err instanceof JwksUnavailableError) return { kind: 'unverified', response: token, reason: err.message };
    const reason = err instanceof IdTokenError ? err.message : 'unexpected';
    return failed('invalid_id_token', `invalid_id_token: ${reason}`);
  }
  if (token.authorizationDetails === undefined) {
    // A consent-based profile (Open Banking UK) binds the grant through openbanking_intent_id instead.
    if (deps.config.ciba.requireGrantedDetails && expect.intentId === undefined) {
      return failed('authorization_mismatch', 'authorization_mismatch: no authorization_details granted');
    }
  } else {
    const mismatch = findAuthorizationMismatch(token.authorizationDetails, expect.authorizationDetails);
    if (mismatch) return failed('authorization_mismatch', `authorization_mismatch: ${mismatch}`);
  }
  return token.expiresIn === undefined
    ? { kind: 'authorized', accessToken: token.accessToken, subject }
    : { kind: 'authorized', accessToken: token.accessToken, accessTokenExpiresIn: token.expiresIn, subject };
}

function failed(failureCode: 'authorization_error' | 'invalid_id_token' | 'authorization_mismatch', error: string) {
  return { kind: 'failed', failureCode, error } as const;
}
