import { createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Agent } from 'undici';
import { ensureDevCertificates, type DevCertificates } from '../../src/sandbox/certs.js';
import { startSandboxBank, type SandboxBank, type SandboxBankOptions } from '../../src/sandbox/bank.js';

/** One dev PKI for the whole test run (made once, reused by every file). */
export function testCertificates(): DevCertificates {
  return ensureDevCertificates(join(tmpdir(), 'ciba-checkout-test-certs'));
}

export function uniquePrefix(name: string): string {
  return `test:${name}:${randomBytes(4).toString('hex')}:`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** Captures every log line, so tests can assert what was (and was not) logged. */
export function captureLogs(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { stream, lines };
}

/**
 * The sandbox bank on random ports under `${prefix}bank:`, with the shop's client `cibaConformance`
 * (tls_client_auth, poll mode unless overridden) and interval 1 s; its console lines are dropped
 * unless `log` is given.
 */
export function startTestBank(prefix: string, overrides: Partial<SandboxBankOptions> = {}): Promise<SandboxBank> {
  return startSandboxBank({
    port: 0,
    appPort: 0,
    certs: testCertificates(),
    redisUrl: 'redis://127.0.0.1:6379',
    redisPrefix: `${prefix}bank:`,
    interval: 1,
    clients: [{ clientId: 'cibaConformance', authMethod: 'tls_client_auth', deliveryMode: 'poll' }],
    log: () => undefined,
    ...overrides,
  });
}

/**
 * An undici agent that trusts the dev CA (TLS verification on) and, given `identity`, presents that
 * client certificate: how a test talks to the sandbox bank over mTLS as the shop, another client,
 * or an anonymous caller.
 */
export function mtlsAgent(certs: Pick<DevCertificates, 'caCert'>, identity?: { cert: string; key: string }): Agent {
  const ca = readFileSync(certs.caCert);
  return new Agent({
    connect: identity ? { ca, cert: readFileSync(identity.cert), key: readFileSync(identity.key) } : { ca },
  });
}

/** The public JWK of the shop's PS256 signing key, as registered with the bank. */
export function signingJwk(certs: DevCertificates) {
  return createPublicKey(readFileSync(certs.signingKeyPs256)).export({ format: 'jwk' });
}
