import type { Cluster } from 'ioredis';
import type { SandboxBank } from '../../src/sandbox/bank.js';
import { decodeEventLog } from '../../src/payments/event-log.js';
import type { Keys } from '../../src/store/keys.js';
import { decodeStatus, PAYMENT_FIELD } from '../../src/store/payment-hash.js';
import { api, waitFor } from './api.js';
import { serviceEnv } from './service-env.js';
import { testCertificates } from './system.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TERMINAL = new Set(['succeeded', 'failed', 'canceled']);

type Answer = Awaited<ReturnType<typeof api>>;

/**
 * Storefront load for the cluster tests (failover, slot migration): shoppers checking out four at a
 * time (a 503 retried with the same Idempotency-Key) and a reader polling their payments, counting
 * every answer; a 5xx other than 503 with Retry-After is a bad answer.
 */
/** The service's environment on a test's private cluster, as the cluster tests run it. */
export function clusterServiceEnv(bank: SandboxBank, prefix: string, seeds: string): Record<string, string> {
  return serviceEnv({
    bank,
    certs: testCertificates(),
    prefix: `${prefix}svc:`,
    extra: {
      REDIS_CLUSTER_NODES: seeds,
      WORKER_LEASE_MS: '3000',
      BANK_TIMEOUT_MS: '5000',
      WORKER_CONCURRENCY: '64',
      SHUTDOWN_TIMEOUT_MS: '1000',
    },
  });
}

export interface CheckoutLoad {
  /** Accepted checkouts, with when each was accepted (ms). */
  created: { id: string; secret: string; at: number }[];
  /** "status code" → count */
  answers: Map<string, number>;
  badAnswers: string[];
  /** Checkouts never accepted: their Idempotency-Key and every answer they got (ms since the load began). */
  refused: { key: string; answers: string[] }[];
  record(res: Answer): string;
  /** The longest a checkout took from its first try to its 202 (ms), retries included. */
  slowestAcceptMs(): number;
  /** Resolves when every checkout was accepted (or retried for 30 s). */
  checkedOut: Promise<void>;
  stopReading(): Promise<void>;
  /**
   * Stops shoppers and reader, ignoring what they fail with: for afterAll after a failed test, so no
   * request is left running into the processes it kills (a `read ECONNRESET` blamed on the test).
   */
  stop(): Promise<void>;
}

export function startCheckoutLoad(url: string, idempotencyPrefix: string, payments: number): CheckoutLoad {
  const created: CheckoutLoad['created'] = [];
  const answers = new Map<string, number>();
  const badAnswers: string[] = [];
  const refused: CheckoutLoad['refused'] = [];
  const record = (res: Answer) => {
    const json = res.json as { code?: string } | null;
    const key = `${res.status} ${json?.code ?? ''}`.trim();
    answers.set(key, (answers.get(key) ?? 0) + 1);
    if (res.status >= 500 && (res.status !== 503 || !res.headers['retry-after'])) badAnswers.push(key);
    return key;
  };
  const began = Date.now();
  const waits = { slowestAcceptMs: 0 };
  const state = { reading: true, shopping: true };
  const stopped = () => !state.shopping;
  let next = 0;
  const shoppers = Array.from({ length: 4 }, async () => {
    while (state.shopping && next < payments) {
      const n = next++;
      const got: string[] = [];
      // A shopper retries (same key) for 30 s: time, not a count, so a slow box's failover window
      // (replica promotion, the node's restart, a checkout settled after it) does not run out of tries.
      const firstTry = Date.now();
      const giveUpAt = firstTry + 30_000;
      while (Date.now() < giveUpAt) {
        const res = await api(url, 'POST', '/checkout', {
          body: { items: [{ sku: 'tea-01', quantity: 1 }], login_hint: 'user' },
          headers: { 'idempotency-key': `${idempotencyPrefix}${n}` },
        });
        got.push(`${Date.now() - began} ${record(res)}`);
        if (res.status === 202) {
          created.push({ id: res.json.id as string, secret: res.json.client_secret as string, at: Date.now() });
          waits.slowestAcceptMs = Math.max(waits.slowestAcceptMs, Date.now() - firstTry);
          break;
        }
        if (stopped()) break;
        await sleep(300);
      }
      if (!stopped() && got.at(-1)?.endsWith(' 202') !== true)
        refused.push({ key: `${idempotencyPrefix}${n}`, answers: got });
      await sleep(400);
    }
  });
  const reader = (async () => {
    while (state.reading) {
      const p = created[Math.floor(Math.random() * created.length)];
      if (p) record(await api(url, 'GET', `/payments/${p.id}`, { headers: { authorization: `Bearer ${p.secret}` } }));
      await sleep(50);
    }
  })();
  const checkedOut = Promise.all(shoppers).then(() => undefined);
  return {
    created,
    answers,
    badAnswers,
    refused,
    record,
    checkedOut,
    slowestAcceptMs: () => waits.slowestAcceptMs,
    async stopReading() {
      state.reading = false;
      await reader;
    },
    async stop() {
      state.shopping = false;
      state.reading = false;
      await Promise.allSettled([checkedOut, reader]);
    },
  };
}

/** Waits until every payment is terminal; what the store and the bank say of them. */
export async function settleAll(
  admin: Cluster,
  keys: Keys,
  created: readonly { id: string }[],
  bank: SandboxBank,
  timeoutMs = 90_000,
) {
  const finals = await waitFor(
    async () => {
      // The status spelled out (the hash holds its letter, see store/payment-hash.ts).
      const all = await Promise.all(
        created.map(async (p) => {
          const h = await admin.hgetall(keys.payment(p.id));
          const status = decodeStatus(h.status);
          return status ? { ...h, status } : h;
        }),
      );
      return all.every((h) => TERMINAL.has(h.status ?? '')) ? all : undefined;
    },
    timeoutMs,
    'every payment to end',
  );
  const transfers = await bank.transfers();
  const perPayment = new Map<string, number>();
  for (const t of transfers) perPayment.set(t.idempotencyKey, (perPayment.get(t.idempotencyKey) ?? 0) + 1);
  return {
    finals,
    perPayment,
    transfers: transfers.length,
    succeeded: finals.filter((h) => h.status === 'succeeded').length,
    failed: finals.filter((h) => h.status === 'failed').map((h) => h[PAYMENT_FIELD.failureCode]),
    doubled: [...perPayment.values()].filter((n) => n > 1).length,
    /** Terminal events in each payment's log: exactly one each. */
    terminalEvents: finals.map(
      (h, i) => decodeEventLog(h, created[i]?.id ?? '').filter((e) => e !== null && TERMINAL.has(e.status)).length,
    ),
  };
}
