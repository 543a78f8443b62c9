import { createHash, X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

/**
 * The TLS peer certificate, only when the TLS layer verified it against the dev CA.
 * The server runs with `rejectUnauthorized: false` solely so that discovery and JWKS work without a
 * client certificate (RFC 8705 §5 lets a client use the mTLS aliases only where it needs them); an
 * unverified certificate is treated exactly like no certificate, so client authentication and
 * certificate binding (RFC 8705 §2.1, §3) only ever see CA-verified certificates.
 */
export function verifiedPeerCertificate(socket: Socket): X509Certificate | undefined {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  return socket.getPeerX509Certificate();
}

/** RFC 8705 §2.1.2: compare the subject DN; node prints one RDN per line, most significant first. */
export function subjectMatches(cert: X509Certificate, expected: string): boolean {
  const normalize = (dn: string): string =>
    dn
      .split(/[\n,]/)
      .map((part) => part.trim())
      .filter((part) => part.length > 0)
      .join(',');
  return normalize(cert.subject) === normalize(expected);
}

/** RFC 8705 §3.1: the `x5t#S256` a certificate-bound token names, the SHA-256 of the DER certificate. */
export function certificateThumbprint(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('base64url');
}
