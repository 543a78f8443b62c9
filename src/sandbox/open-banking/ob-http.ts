import type { IncomingMessage, ServerResponse } from 'node:http';
import { compactVerify, createLocalJWKSet, type JWK, type JWTPayload } from 'jose';
import { boundThumbprint, bearerToken, createJwtAccessTokenCheck, presentsBoundCertificate } from '../access-tokens.js';

/**
 * HTTP plumbing of the sandbox's Open Banking API: OBErrorResponse1 errors, the bearer token check
 * (a JWT access token of this OP, bound to the TLS client certificate, RFC 8705 §3) and the
 * detached `x-jws-signature` check (v3.1.4+ form: no b64 header, OB critical headers).
 */

export const OB_CRIT = [
  'http://openbanking.org.uk/iat',
  'http://openbanking.org.uk/iss',
  'http://openbanking.org.uk/tan',
];
const MAX_BODY = 16 * 1024;

/** An OBErrorResponse1 answer: `Code` is the status, `Errors[0].ErrorCode` an OBErrorResponseError1Code. */
export class ObError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function sendJson(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const interaction = req.headers['x-fapi-interaction-id'];
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...(typeof interaction === 'string' && interaction.length <= 64 ? { 'x-fapi-interaction-id': interaction } : {}),
    ...headers,
  });
  res.end(JSON.stringify(body));
}

export function sendObError(req: IncomingMessage, res: ServerResponse, error: ObError): void {
  sendJson(
    req,
    res,
    error.status,
    {
      Code: String(error.status),
      Message: error.message,
      Errors: [{ ErrorCode: error.errorCode, Message: error.message }],
    },
    error.headers,
  );
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new ObError(413, 'UK.OBIE.Field.Invalid', 'request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ObError(400, 'UK.OBIE.Resource.InvalidFormat', 'body is not JSON');
  }
}

/** Verifies the OP's access tokens: signature, iss, aud, at+jwt, scope `payments`, certificate binding. */
export function createTokenVerifier(deps: { issuer: string; audience: string; jwks: { keys: JWK[] } }) {
  const checkJwt = createJwtAccessTokenCheck(deps);
  const unauthorized = (message: string) =>
    new ObError(401, 'UK.OBIE.Unauthorized', message, { 'www-authenticate': 'Bearer error="invalid_token"' });

  return async function verifyAccessToken(req: IncomingMessage): Promise<JWTPayload & { client_id: string }> {
    const token = bearerToken(req);
    if (token === undefined) throw unauthorized('missing bearer token');
    const payload = await checkJwt(token);
    if (payload === undefined) throw unauthorized('access token is not valid');
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
    if (typeof payload.client_id !== 'string' || !scopes.includes('payments')) throw unauthorized('no payments scope');
    // RFC 8705 §3.1: every token of this API is certificate-bound; it must come with its certificate
    const thumbprint = boundThumbprint(payload);
    if (thumbprint === undefined || !presentsBoundCertificate(req, thumbprint)) {
      throw unauthorized('client certificate does not match the token binding');
    }
    return payload as JWTPayload & { client_id: string };
  };
}

/**
 * Checks `x-jws-signature` over the exact body with the client's registered keys. The payload of
 * the detached JWS is the body, base64url-encoded (v3.1.4+ dropped `b64: false`).
 */
export async function verifyDetachedJws(
  header: string | string[] | undefined,
  body: string,
  keys: JWK[],
): Promise<void> {
  if (typeof header !== 'string' || header.length === 0) {
    throw new ObError(400, 'UK.OBIE.Signature.Missing', 'x-jws-signature is required');
  }
  const [protectedHeader, detached, signature] = header.split('.');
  if (protectedHeader === undefined || detached !== '' || signature === undefined) {
    throw new ObError(400, 'UK.OBIE.Signature.Malformed', 'x-jws-signature is not a detached JWS');
  }
  const compact = `${protectedHeader}.${Buffer.from(body).toString('base64url')}.${signature}`;
  const keySet = createLocalJWKSet({ keys });
  try {
    const { protectedHeader: verifiedHeader } = await compactVerify(compact, keySet, {
      algorithms: ['PS256', 'ES256'],
      crit: Object.fromEntries(OB_CRIT.map((name) => [name, true])),
    });
    const crit = verifiedHeader.crit ?? [];
    if (
      !OB_CRIT.every((name) => crit.includes(name) && verifiedHeader[name] !== undefined) ||
      verifiedHeader.b64 !== undefined
    ) {
      throw new Error('OB critical headers');
    }
  } catch {
    throw new ObError(400, 'UK.OBIE.Signature.Invalid', 'x-jws-signature does not verify');
  }
}

/** JSON with sorted keys, so two Initiations compare as data rather than as text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([left], [right]) =>
      left < right ? -1 : left > right ? 1 : 0,
    );
    return `{${entries.map(([name, member]) => `${JSON.stringify(name)}:${canonicalJson(member)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
