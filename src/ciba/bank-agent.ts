import { readFileSync } from 'node:fs';
import { Agent } from 'undici';
import type { Config } from '../config.js';

/** TLS material for the bank connection, read once from the files named in the configuration. */
export interface BankTlsOptions {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
  pfx?: Buffer;
  passphrase?: string;
}

/**
 * Reads the CA and the client certificate (PEM pair, or PKCS#12 as banks hand them out).
 * The PEM pair wins when both are configured, since it needs no passphrase.
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-2
 */
export function readBankTlsOptions(bank: Config['bank']): BankTlsOptions {
  const ca = readFileSync(bank.caCertFile);
  if (bank.clientCertFile && bank.clientKeyFile) {
    return { ca, cert: readFileSync(bank.clientCertFile), key: readFileSync(bank.clientKeyFile) };
  }
  if (bank.clientPfxFile) {
    const pfx = readFileSync(bank.clientPfxFile);
    return bank.clientPfxPassphrase === undefined ? { ca, pfx } : { ca, pfx, passphrase: bank.clientPfxPassphrase };
  }
  throw new Error('bank client certificate: configure a PEM certificate and key, or a PKCS#12 file');
}

/**
 * The one undici Agent for every bank call (OP and payment API). The client certificate is always
 * presented, because the payment API is mTLS whatever the token endpoint's client auth is, and the
 * bank's certificate is always verified against the configured CA.
 * `connections` caps the sockets per bank origin; keep-alive keeps the hot token poll off the TLS handshake.
 */
export function createBankAgent(bank: Config['bank']): Agent {
  const tls = readBankTlsOptions(bank);
  return new Agent({
    connect: { ...tls, rejectUnauthorized: true, timeout: bank.timeoutMs },
    connections: bank.maxConnections,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 120_000,
    headersTimeout: bank.timeoutMs,
    bodyTimeout: bank.timeoutMs,
  });
}
