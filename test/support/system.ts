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
 * freePort's ports: 12,000 outside the kernel's ephemeral range. A port from listen(0) goes back to
 * the pool listen(0) and outgoing connections draw from, so any socket opened on the machine before
 * the test's own bind could take it (EADDRINUSE); here only freePort hands ports out, each jest
 * worker from a block of its own. 20000–31999 (below Linux's default 32768–60999) unless this
 * machine's range reaches into it; then right below or right above the range. Always clear of Redis
 * and the test clusters (6379, 7101–7186, bus ports 17101–17186).
 */
export const FREE_PORT_POOL = { size: 12_000, blockSize: 100 } as const;
const CLEAR_OF_CLUSTERS = 17_200;

/** The kernel's ephemeral port range (listen(0), outgoing connections); Linux's default where it cannot be read. */
export function ephemeralPortRange(): { low: number; high: number } {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return { low: low ?? 0, high: high ?? 0 };
  } catch {
    // not Linux: its default
  }
  return { low: 32_768, high: 60_999 };
}

/** The first port of freePort's pool on this machine. */
export function freePortPoolStart(range = ephemeralPortRange()): number {
  const { size } = FREE_PORT_POOL;
  const outside = (from: number) =>
    from >= CLEAR_OF_CLUSTERS && from + size - 1 <= 65_535 && (from + size - 1 < range.low || from > range.high);
  const from = [20_000, range.low - size, range.high + 1].find(outside);
  if (from === undefined)
    throw new Error(
      `no ${String(size)} test ports outside the ephemeral range ${String(range.low)}-${String(range.high)}`,
    );
  return from;
}

const poolStart = freePortPoolStart();
let nextPortInBlock = randomInt(FREE_PORT_POOL.blockSize);

/** A port nothing listens on, for a server the test starts later (a service given PORT, a child process). */
export async function freePort(): Promise<number> {
  const { size, blockSize } = FREE_PORT_POOL;
  const blocks = size / blockSize;
  // Jest numbers its workers from 1; sharing a block, two could hand out one port before either binds it.
  const worker = Number(process.env.JEST_WORKER_ID ?? 1);
  if (worker > blocks)
    throw new Error(`jest worker ${String(worker)}: only ${String(blocks)} port blocks; run fewer workers`);
  const block = worker - 1;
  for (let tries = 0; tries < blockSize; tries++) {
    const port = poolStart + block * blockSize + (nextPortInBlock++ % blockSize);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in block ${String(block)} of ${String(poolStart)}+`);
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
