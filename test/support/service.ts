import { systemClock, type Clock } from '../../src/clock.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { startService, type Service } from '../../src/composition/service.js';
import type { DevCertificates } from '../../src/sandbox/certs.js';
import type { SandboxBank } from '../../src/sandbox/bank.js';
import { waitFor } from './api.js';
import { anythingDue, dueMembers } from './due-work.js';
import { deleteKeysWithPrefix, scanKeys } from './redis.js';
import { openBankingEnv } from './scripted-ob-bank.js';
import type { ScriptedOp } from './scripted-op.js';
import { serviceEnv } from './service-env.js';
import { captureLogs, freePort, signingJwk, startTestBank, testCertificates, uniquePrefix } from './system.js';

/** The sandbox bank (real oidc-provider over mTLS), started for the service and closed with it. */
export interface SandboxChoice {
  deliveryMode?: 'poll' | 'ping';
  /** Seconds the sandbox bank advertises as `interval` (default 1). */
  interval?: number;
  autoApprove?: 'approve' | 'deny';
  approvalDelayMs?: number;
  /** The Open Banking UK profile: the sandbox's OB API, signed CIBA requests and JWS (src/bank/uk-openbanking). */
  openBanking?: boolean;
  /** Open Banking: how long a payment stays Pending at the sandbox bank. */
  obSettleDelayMs?: number;
}

export interface TestServiceOptions {
  /**
   * Which bank the service talks to: the sandbox bank (the default), a scripted OP the test owns
   * (with its scripted Open Banking bank when `openBanking`), or none (discovery fails in the
   * background: for suites about webhooks and streams, which make payments without a bank).
   */
  bank?: { sandbox: SandboxChoice } | { op: ScriptedOp; openBanking?: boolean } | 'none';
  role?: 'api' | 'worker' | 'all';
  /** Overrides any variable of the service's environment (an empty string removes one). */
  env?: Record<string, string>;
  /** The service's clock (a test clock shared with a scripted OP); real time by default. */
  clock?: Clock;
}

export interface TestService {
  /** Base URL of the API ('' when ROLE is worker). */
  url: string;
  service: Service;
  config: Config;
  env: Record<string, string>;
  /** Every key of the run (service and sandbox bank) is under it; `close` deletes them. */
  prefix: string;
  certs: DevCertificates;
  clock: Clock;
  /** Every log line of the service (and of the instances of `startAnother`). */
  logs: string[];
  /** The sandbox bank when `bank` chose it, with its console lines (approval URLs). */
  bank: SandboxBank | null;
  bankLines: string[];
  /** One more instance on the same environment and Redis prefix (`overrides` on top); closed with this one. */
  startAnother(overrides?: Record<string, string>): Promise<Service>;
  /** Every Redis key under the service's prefix. */
  keys(): Promise<string[]>;
  /**
   * Waits until the worker has claimed everything due by its clock and holds nothing: the exact
   * point after which "nothing more happened" can be asserted (instead of sleeping and hoping the
   * worker looked in time).
   */
  idle(): Promise<void>;
  /** The work items of a payment still scheduled or in hand (`poll:…`, `submit:…`, `hook:…`). */
  workOf(paymentId: string): Promise<string[]>;
  close(): Promise<void>;
}

/** What the service needs to know of a scripted OP and the test defaults that go with it. */
function scriptedOpEnv(op: ScriptedOp, openBanking: boolean): Record<string, string> {
  return {
    BANK_TIMEOUT_MS: '2000',
    CIBA_REQUESTED_EXPIRY: '30',
    SHUTDOWN_TIMEOUT_MS: '2000',
    STOREFRONT_ENABLED: 'true',
    ...(openBanking ? openBankingEnv(op) : {}),
  };
}

function sandboxEnv(bank: SandboxBank, certs: DevCertificates, choice: SandboxChoice): Record<string, string> {
  return {
    CIBA_DELIVERY_MODE: choice.deliveryMode ?? 'poll',
    STOREFRONT_ENABLED: 'true',
    ...(choice.openBanking
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
  };
}

function startSandboxFor(prefix: string, port: number, choice: SandboxChoice, lines: string[]): Promise<SandboxBank> {
  const certs = testCertificates();
  const deliveryMode = choice.deliveryMode ?? 'poll';
  return startTestBank(prefix, {
    interval: choice.interval ?? 1,
    clients: [
      {
        clientId: 'cibaConformance',
        authMethod: 'tls_client_auth',
        deliveryMode,
        ...(deliveryMode === 'ping' ? { notificationEndpoint: `http://127.0.0.1:${port}/ciba/notify` } : {}),
        ...(choice.openBanking ? { openBanking: true, jwks: { keys: [signingJwk(certs)] } } : {}),
      },
    ],
    ...(choice.obSettleDelayMs !== undefined ? { obSettleDelayMs: choice.obSettleDelayMs } : {}),
    ...(choice.autoApprove ? { autoApprove: choice.autoApprove } : {}),
    ...(choice.approvalDelayMs !== undefined ? { approvalDelayMs: choice.approvalDelayMs } : {}),
    log: (line) => lines.push(line),
  });
}

/** A service started against the sandbox bank (the default choice). */
export type SandboxService = TestService & { bank: SandboxBank };

/**
 * The one way a test starts the service in its own process: the real composition (API and/or
 * worker, real Redis on a unique prefix, real mTLS to the bank chosen), its log lines captured, a
 * registry without default process metrics, and a short worker idle sleep.
 */
export function startTestService(
  options?: TestServiceOptions & { bank?: { sandbox: SandboxChoice } },
): Promise<SandboxService>;
export function startTestService(options: TestServiceOptions): Promise<TestService>;
export async function startTestService(options: TestServiceOptions = {}): Promise<TestService> {
  const choice = options.bank ?? { sandbox: {} };
  const prefix = uniquePrefix('svc');
  const op = choice !== 'none' && 'op' in choice ? choice.op : null;
  const certs = op?.certs ?? testCertificates();
  const port = await freePort();
  const bankLines: string[] = [];
  const sandbox = choice !== 'none' && 'sandbox' in choice ? choice.sandbox : null;
  const bank = sandbox ? await startSandboxFor(prefix, port, sandbox, bankLines) : null;
  const env = serviceEnv({
    bank: op ?? bank ?? { issuer: 'http://127.0.0.1:9', apiUrl: 'http://127.0.0.1:9' },
    certs,
    ...(op ? { clientId: op.clientId } : {}),
    prefix: `${prefix}svc:`,
    extra: {
      PORT: String(port),
      ...(op ? scriptedOpEnv(op, choice !== 'none' && 'op' in choice && choice.openBanking === true) : {}),
      ...(bank && sandbox ? sandboxEnv(bank, certs, sandbox) : {}),
      ...options.env,
    },
  });
  const clock = options.clock ?? systemClock;
  const logs = captureLogs();
  const start = (vars: Record<string, string>) =>
    startService(loadConfig(vars), {
      logger: createLogger('info', logs.stream),
      clock,
      metrics: createMetrics({ defaultMetrics: false }),
      workerIdleMs: 10,
    });
  const config = loadConfig({ ...env, ROLE: options.role ?? 'all' });
  const service = await start({ ...env, ROLE: config.role });
  const others = new Set<Service>();
  return {
    url: service.url ?? '',
    service,
    config,
    env,
    prefix,
    certs,
    clock,
    logs: logs.lines,
    bank,
    bankLines,
    async startAnother(overrides = {}) {
      const another = await start({ ...env, PORT: '0', ...overrides });
      others.add(another);
      return {
        ...another,
        async close() {
          others.delete(another);
          await another.close();
        },
      };
    },
    keys: () => scanKeys(service.redis, `${config.redisPrefix}*`),
    async idle() {
      const { redis, keys } = service;
      const caughtUp = async (): Promise<boolean> => {
        if ((service.worker?.inFlight() ?? 0) > 0) return false;
        const now = clock.now();
        for (const k of await redis.smembers(keys.shardsInUse)) {
          const shard = keys.shard(Number(k));
          if ((await redis.zcard(shard.leases)) > 0 || (await anythingDue(redis, shard, now))) return false;
        }
        // Read last: an item claimed and finished while Redis was read shows up here or in the leases.
        return (service.worker?.inFlight() ?? 0) === 0;
      };
      await waitFor(caughtUp, 10_000, 'the worker to finish everything due');
    },
    async workOf(paymentId) {
      const shard = service.keys.scheduleOf(paymentId);
      const members = [
        ...(await dueMembers(service.redis, shard)),
        ...(await service.redis.zrange(shard.leases, 0, -1)),
      ];
      return members.filter((m) => m.includes(paymentId)).sort();
    },
    async close() {
      for (const other of others) await other.close();
      await service.close();
      await bank?.close();
      await deleteKeysWithPrefix(prefix);
    },
  };
}
