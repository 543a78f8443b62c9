import { CompactSign, type CryptoKey } from 'jose';

/**
 * The `x-jws-signature` header of Open Banking UK: a JWS over the exact request body with the
 * payload left out ("detached content", RFC 7515 Appendix F). From v3.1.4 on the `b64` header is
 * no longer used (the payload is base64url-encoded as in any JWS) and the critical headers are the
 * OB ones: iat, iss (the TPP's `{org-id}/{software-statement-id}`) and tan (the trust anchor).
 * @see https://openbankinguk.github.io/read-write-api-site3/v3.1.10/profiles/read-write-data-api-profile.html#message-signing
 */
export const OB_CLAIM_IAT = 'http://openbanking.org.uk/iat';
export const OB_CLAIM_ISS = 'http://openbanking.org.uk/iss';
export const OB_CLAIM_TAN = 'http://openbanking.org.uk/tan';
const CRIT = [OB_CLAIM_IAT, OB_CLAIM_ISS, OB_CLAIM_TAN];

export interface JwsSigner {
  alg: 'PS256' | 'ES256';
  kid: string;
  key: CryptoKey;
  /** `http://openbanking.org.uk/iss`. */
  issuer: string;
  /** `http://openbanking.org.uk/tan`, e.g. openbanking.org.uk. */
  trustAnchor: string;
}

/** `<protected header>..<signature>` over `body`, signed at `nowMs`. */
export async function signDetachedJws(signer: JwsSigner, body: string, nowMs: number): Promise<string> {
  const jws = await new CompactSign(new TextEncoder().encode(body))
    .setProtectedHeader({
      alg: signer.alg,
      kid: signer.kid,
      typ: 'JOSE',
      cty: 'application/json',
      [OB_CLAIM_IAT]: Math.floor(nowMs / 1000),
      [OB_CLAIM_ISS]: signer.issuer,
      [OB_CLAIM_TAN]: signer.trustAnchor,
      crit: CRIT,
    })
    .sign(signer.key, { crit: Object.fromEntries(CRIT.map((name) => [name, true])) });
  const [header, , signature] = jws.split('.');
  return `${header ?? ''}..${signature ?? ''}`;
}
