import type { IncomingMessage } from 'node:http';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { JWK, JWTPayload } from 'jose';
import { certificateThumbprint, verifiedPeerCertificate } from './peer-certificate.js';

/**
 * What both payment APIs of the sandbox check of the OP's access tokens: a Bearer JWT (RFC 6750
 * §2.1) signed by the OP, typed `at+jwt` (RFC 9068), for this API, and bound to the TLS client
 * certificate it comes with (RFC 8705 §3). Each API words its own errors.
 */

/** Only the public members of the OP's signing keys verify tokens. */
const PUBLIC_MEMBERS = new Set(['kty', 'n', 'e', 'crv', 'x', 'y', 'kid', 'alg', 'use']);

/** The token of an `Authorization: Bearer` header, if there is one in the RFC 6750 §2.1 syntax. */
export function bearerToken(req: IncomingMessage): string | undefined {
  return /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(req.headers.authorization ?? '')?.[1];
}

/** Verifies signature, iss, aud, alg PS256 and typ at+jwt; undefined for any token that fails. */
export function createJwtAccessTokenCheck(deps: {
  issuer: string;
  audience: string;
  jwks: { keys: JWK[] };
}): (token: string) => Promise<JWTPayload | undefined> {
  const keySet = createLocalJWKSet({
    keys: deps.jwks.keys.map((jwk) =>
      Object.fromEntries(Object.entries(jwk).filter(([member]) => PUBLIC_MEMBERS.has(member))),
    ),
  });
  return async (token) => {
    try {
      const { payload } = await jwtVerify(token, keySet, {
        issuer: deps.issuer,
        audience: deps.audience,
        algorithms: ['PS256'],
        typ: 'at+jwt',
      });
      return payload;
    } catch {
      return undefined;
    }
  };
}

/** The token's `cnf.x5t#S256` (RFC 8705 §3.1), if it is certificate-bound. */
export function boundThumbprint(payload: JWTPayload): string | undefined {
  const cnf = payload.cnf as { 'x5t#S256'?: unknown } | undefined;
  return typeof cnf?.['x5t#S256'] === 'string' ? cnf['x5t#S256'] : undefined;
}

/** RFC 8705 §3.1: the CA-verified certificate on this connection is the one the token is bound to. */
export function presentsBoundCertificate(req: IncomingMessage, thumbprint: string): boolean {
  const cert = verifiedPeerCertificate(req.socket);
  return cert !== undefined && certificateThumbprint(cert) === thumbprint;
}
