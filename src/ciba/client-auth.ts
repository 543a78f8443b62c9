import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT, calculateJwkThumbprint, exportJWK, importPKCS8, type CryptoKey } from 'jose';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';

/**
 * How the client authenticates at the bank's token and backchannel endpoints. Split into what never
 * changes (built once: the hot token poll only concatenates) and what must be fresh per request.
 */
export interface ClientAuthentication {
  /** Extra request headers (client_secret_basic's Authorization). */
  readonly headers: Readonly<Record<string, string>>;
  /** A form-urlencoded fragment starting with `&`, or '' (client_id for tls_client_auth). */
  readonly staticBody: string;
  /** Per-request fields (a fresh client assertion), as a fragment starting with `&`; absent when none. */
  readonly freshBody?: () => Promise<string>;
}

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ASSERTION_LIFETIME_SECONDS = 60;

/** A private signing key from a PKCS#8 PEM file, with its RFC 7638 thumbprint as `kid`. */
export interface SigningKey {
  alg: 'PS256' | 'ES256';
  key: CryptoKey;
  kid: string;
}

export async function loadSigningKey(file: string, alg: 'PS256' | 'ES256', kid?: string): Promise<SigningKey> {
  const key = await importPKCS8(readFileSync(file, 'utf8'), alg, { extractable: true });
  if (kid !== undefined) return { alg, key, kid }; // as registered with a directory (BANK_SIGNING_KID)
  const jwk = await exportJWK(key);
  // the thumbprint covers only the public members, so it names the key the bank registered
  return { alg, key, kid: await calculateJwkThumbprint(jwk) };
}

/** Form encoding as in application/x-www-form-urlencoded (space → '+'), RFC 6749 Appendix B. */
export function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

/**
 * Builds the client authentication for the configured method.
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-2 tls_client_auth: client_id in every body
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.2 private_key_jwt
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1 client_secret_basic
 */
export function createClientAuthentication(deps: {
  bank: Config['bank'];
  signingKey: SigningKey | undefined;
  clock: Clock;
}): ClientAuthentication {
  const { bank, signingKey, clock } = deps;
  const clientIdField = `&client_id=${formEncode(bank.clientId)}`;
  switch (bank.clientAuthMethod) {
    case 'tls_client_auth':
      return { headers: {}, staticBody: clientIdField };
    case 'client_secret_basic': {
      if (bank.clientSecret === undefined) throw new Error('BANK_CLIENT_SECRET is required for client_secret_basic');
      const basic = Buffer.from(`${formEncode(bank.clientId)}:${formEncode(bank.clientSecret)}`).toString('base64');
      return { headers: { authorization: `Basic ${basic}` }, staticBody: '' };
    }
    case 'private_key_jwt': {
      if (!signingKey) throw new Error('BANK_SIGNING_KEY is required for private_key_jwt');
      const prefix = `${clientIdField}&client_assertion_type=${formEncode(CLIENT_ASSERTION_TYPE)}&client_assertion=`;
      return {
        headers: {},
        staticBody: '',
        freshBody: async () => prefix + (await signClientAssertion(bank, signingKey, clock)),
      };
    }
  }
}

/**
 * A client assertion with a fresh `jti` and a lifetime of at most 60 s; `aud` is the issuer, as
 * FAPI asks, rather than the endpoint URL.
 * @see https://openid.net/specs/fapi-2_0-security-profile.html#section-5.3.2.1
 */
export async function signClientAssertion(bank: Config['bank'], signingKey: SigningKey, clock: Clock): Promise<string> {
  const now = Math.floor(clock.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: signingKey.alg, kid: signingKey.kid, typ: 'JWT' })
    .setIssuer(bank.clientId)
    .setSubject(bank.clientId)
    .setAudience(bank.issuer)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + ASSERTION_LIFETIME_SECONDS)
    .sign(signingKey.key);
}
