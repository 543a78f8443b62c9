import { createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startService, type Service } from '../../src/composition/service.js';
import { ensureDevCertificates, type DevCertificates } from '../../src/sandbox/certs.js';
import { startSandboxBank, type SandboxBank, type SandboxBankOptions } from '../../src/sandbox/bank.js';
import { deleteKeysWithPrefix } from './redis.js';
import { serviceEnv } from './service-env.js';

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

/** The public JWK of the shop's PS256 signing key, as registered with the bank. */
export function signingJwk(certs: DevCertificates) {
  return createPublicKey(readFileSync(certs.signingKeyPs256)).export({ format: 'jwk' });
}

export interface SystemOptions {
  deliveryMode?: 'poll' | 'ping';
  /** Seconds the sandbox bank advertises as `interval`. */
  interval?: number;
  env?: Record<string, string>;
  autoApprove?: 'approve' | 'deny';
  approvalDelayMs?: number;
  role?: 'api' | 'worker' | 'all';
  /** uk-openbanking: the sandbox's Open Banking API, signed CIBA requests and JWS (src/bank/uk-openbanking). */
  bankProfile?: 'sandbox' | 'uk-openbanking';
  /** uk-openbanking: how long a payment stays Pending at the sandbox bank. */
  obSettleDelayMs?: number;
}

export interface TestSystem {
  apiUrl: string;
  bank: SandboxBank;
  service: Service;
  config: Config;
  env: Record<string, string>;
  prefix: string;
  certs: DevCertificates;
  logs: string[];
  /** Sandbox console lines (approval URLs). */
  bankLines: string[];
  /** Starts one more service process-equivalent on the same Redis prefix (another instance). */
  startAnother(overrides?: Record<string, string>): Promise<Service>;
  close(): Promise<void>;
}

/**
 * The whole system in one test process: the sandbox bank (real oidc-provider over mTLS) and the
 * service (API + worker) on a unique Redis prefix, talking over real TLS on 127.0.0.1.
 */
export async function startSystem(options: SystemOptions = {}): Promise<TestSystem> {
  const certs = testCertificates();
  const prefix = uniquePrefix('sys');
  const deliveryMode = options.deliveryMode ?? 'poll';
  const servicePort = await freePort();
  const bankLines: string[] = [];
  const openBanking = options.bankProfile === 'uk-openbanking';
  const bank = await startTestBank(prefix, {
    interval: options.interval ?? 1,
    clients: [
      {
        clientId: 'cibaConformance',
        authMethod: 'tls_client_auth',
        deliveryMode,
        ...(deliveryMode === 'ping' ? { notificationEndpoint: `http://127.0.0.1:${servicePort}/ciba/notify` } : {}),
        ...(openBanking ? { openBanking: true, jwks: { keys: [signingJwk(certs)] } } : {}),
      },
    ],
    ...(options.obSettleDelayMs !== undefined ? { obSettleDelayMs: options.obSettleDelayMs } : {}),
    ...(options.autoApprove ? { autoApprove: options.autoApprove } : {}),
    ...(options.approvalDelayMs !== undefined ? { approvalDelayMs: options.approvalDelayMs } : {}),
    log: (line) => bankLines.push(line),
  });
  const env = serviceEnv({
    bank,
    certs,
    prefix: `${prefix}svc:`,
    extra: {
      PORT: String(servicePort),
      CIBA_DELIVERY_MODE: deliveryMode,
      STOREFRONT_ENABLED: 'true',
      ...(openBanking
        ? {
            BANK_PROFILE: 'uk-openbanking',
            BANK_API_URL: bank.obApiUrl,
            BANK_SIGNING_KEY: certs.signingKeyPs256,
            CIBA_SIGNED_REQUEST: 'true',
            CIBA_SCOPE: 'openid payments',
            OB_JWS_ISS: 'test-org/test-ssa',
            OB_CREDITOR_IDENTIFICATION: '40400411290112',
          }
        : {}),
      ...options.env,
    },
  });
  const config = loadConfig({ ...env, ROLE: options.role ?? 'all' });
  const logs = captureLogs();
  const logger = createLogger('info', logs.stream);
  const service = await startService(config, { logger, workerIdleMs: 10 });
  const others: Service[] = [];
  return {
    apiUrl: service.url ?? '',
    bank,
    service,
    config,
    env,
    prefix,
    certs,
    logs: logs.lines,
    bankLines,
    async startAnother(overrides = {}) {
      const another = await startService(loadConfig({ ...env, PORT: '0', ...overrides }), {
        logger,
        workerIdleMs: 10,
      });
      others.push(another);
      return another;
    },
    async close() {
      for (const other of others) await other.close();
      await service.close();
      await bank.close();
      await deleteKeysWithPrefix(prefix);
    },
  };
}
