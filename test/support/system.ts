import { createPublicKey, randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Agent } from 'undici';
import { ensureDevCertificates, type DevCertificates } from '../../src/sandbox/certs.js';
import { startSandboxBank, type SandboxBank, type SandboxBankOptions } from '../../src/sandbox/bank.js';

const TEST_CERTS_DIR = join(tmpdir(), 'ciba-checkout-test-certs');

/**
 * One dev PKI for the whole test run (made once, reused by every file). On a fresh machine two jest
 * workers may both find it missing: made in place, the second rewrote the CA and keys under the first
 * (an openssl error, or a suite's TLS peers holding certificates of two different CAs). So each makes
 * one in a directory of its own and renames it into place; a rename onto the finished one fails, and
 * that worker uses the one already there.
 */
export function testCertificates(): DevCertificates {
  // certs.ts makes this file last: when it is there, the rest is too.
  if (!existsSync(join(TEST_CERTS_DIR, 'signing-es256.key'))) {
    const draft = mkdtempSync(`${TEST_CERTS_DIR}-draft-`);
    ensureDevCertificates(draft);
    try {
      renameSync(draft, TEST_CERTS_DIR);
    } catch {
      rmSync(draft, { recursive: true, force: true });
    }
  }
  return ensureDevCertificates(TEST_CERTS_DIR);
}

export function uniquePrefix(name: string): string {
  return `test:${name}:${randomBytes(4).toString('hex')}:`;
}

/**
 * freePort's ports: 8 blocks of 1,500 from 20000, below Linux's ephemeral range (32768–60999) and
 * clear of the test clusters (7101–7186, bus ports 17101–17186). A port from listen(0) went back to
 * the pool listen(0) draws from (odd ports of 32768–46883: 1 in ~7,000), so any server started on the
 * machine before the test's own bind could take it (EADDRINUSE); here only freePort hands ports out,
 * and each jest worker from its own block.
 */
export const FREE_PORT_RANGE = { from: 20_000, blockSize: 1500, blocks: 8 } as const;
let nextPortInBlock = randomInt(FREE_PORT_RANGE.blockSize);

/** A port nothing listens on, for a server the test starts later (a service given PORT, a child process). */
export async function freePort(): Promise<number> {
  const { from, blockSize, blocks } = FREE_PORT_RANGE;
  const block = Number(process.env.JEST_WORKER_ID ?? 0) % blocks;
  for (let tries = 0; tries < blockSize; tries++) {
    const port = from + block * blockSize + (nextPortInBlock++ % blockSize);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in block ${String(block)} of ${String(from)}+`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => {
      resolve(false);
    });
    // All addresses, as the service binds (composition/api.ts).
    server.listen(port, '0.0.0.0', () => {
      server.close(() => {
        resolve(true);
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
