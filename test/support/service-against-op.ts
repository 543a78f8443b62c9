import type { Clock } from '../../src/clock.js';
import { api, waitFor, waitForStatus } from './api.js';
import { startTestService, type TestService } from './service.js';
import {
  startScriptedOp,
  type Grant,
  type RecordedRequest,
  type ScriptedOp,
  type ScriptedOpOptions,
} from './scripted-op.js';
import { testCertificates } from './system.js';

/**
 * The real service (API + worker, real Redis on a unique prefix, real mTLS) pointed at a scripted
 * test OP, for the service-level conformance suite (issue 4).
 *
 * Time: the service and the OP share one `TestClock` (real time plus an offset a test can move),
 * so waits of 30 s or more (interval 31, slow_down, the ping safety poll, expiry) are a jump, and
 * the OP's recorded `at` of every request is on the same time line as the service's schedule.
 */

export interface TestClock extends Clock {
  /** Moves time forward by `ms` for the service and the OP alike. */
  advance(ms: number): void;
}

export function createTestClock(): TestClock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance(ms) {
      offset += ms;
    },
  };
}

/** One checkout accepted by the service, with what the OP saw of it. */
export interface StartedPayment {
  id: string;
  secret: string;
  bindingMessage: string;
  /** The backchannel request as the OP recorded it. */
  backchannel: RecordedRequest;
  grant: Grant;
  authReqId: string;
  /** Token requests carrying this payment's auth_req_id, in order. */
  polls(): RecordedRequest[];
  /** Payment API calls carrying this payment's id as Idempotency-Key, in order. */
  paymentCalls(): RecordedRequest[];
}

export interface ServiceAgainstOp extends TestService {
  clock: TestClock;
  /** POST /checkout (one tea, 12.90 EUR, by default). */
  checkout(body?: Record<string, unknown>): Promise<Awaited<ReturnType<typeof api>>>;
  /** A checkout that must be accepted, matched to its grant at the OP. */
  start(loginHint?: string): Promise<StartedPayment>;
  /** GET /payments/:id with the client secret. */
  status(p: StartedPayment): Promise<{ status: string; failure_code: string | null }>;
  /** Waits until the payment is in one of `statuses` (default: a final one). */
  settle(
    p: StartedPayment,
    statuses?: string[],
    timeoutMs?: number,
  ): Promise<{ status: string; failure_code: string | null }>;
  /** When the next token poll of the payment is scheduled (ms), or null when none is. */
  nextPollAt(p: StartedPayment): Promise<number | null>;
  /** Waits until the payment's poll item is back in the due set (not leased, not in flight) and returns its time. */
  waitForNextPoll(p: StartedPayment, after?: number): Promise<number>;
  /** Moves the clock to the payment's next due poll or submit, again and again, until `done` holds. */
  drive(p: StartedPayment, done: () => boolean | Promise<boolean>, timeoutMs?: number): Promise<void>;
  /** Cancels every payment started here that is still open, so no poll of one test reaches the next. */
  cancelOpen(): Promise<void>;
}

export const ONE_TEA = { items: [{ sku: 'tea-01', quantity: 1 }], login_hint: 'alice' };

/**
 * Starts the service (`startTestService`) against `op` with the conformance helpers on top;
 * `env` overrides any variable (an empty string removes one).
 */
export async function startServiceAgainst(
  op: ScriptedOp,
  env: Record<string, string> = {},
  options: { clock?: TestClock; openBanking?: boolean } = {},
): Promise<ServiceAgainstOp> {
  const clock = options.clock ?? createTestClock();
  const svc = await startTestService({ bank: { op, openBanking: options.openBanking ?? false }, env, clock });
  const { service, url } = svc;
  const started: StartedPayment[] = [];

  const checkout: ServiceAgainstOp['checkout'] = (body = ONE_TEA) => api(url, 'POST', '/checkout', { body });

  const status: ServiceAgainstOp['status'] = async (p) => {
    const r = await api(url, 'GET', `/payments/${p.id}`, { headers: { authorization: `Bearer ${p.secret}` } });
    if (r.status !== 200) throw new Error(`GET /payments/${p.id} answered ${r.status}`);
    return r.json;
  };

  const nextPollAt: ServiceAgainstOp['nextPollAt'] = async (p) => {
    const score = await service.redis.zscore(service.keys.dueOf(`poll:${p.id}`).key, `poll:${p.id}`);
    return score === null ? null : Number(score);
  };

  return {
    ...svc,
    clock,
    checkout,
    async start(loginHint = 'alice') {
      const res = await checkout({ ...ONE_TEA, login_hint: loginHint });
      if (res.status !== 202) throw new Error(`checkout answered ${res.status}: ${JSON.stringify(res.json)}`);
      const { id, client_secret: secret, binding_message: bindingMessage } = res.json;
      const grant = [...op.grants.values()].find((g) => g.bindingMessage === bindingMessage);
      const backchannel = op
        .requestsTo('backchannel')
        .find((r) => (r.form.binding_message ?? r.requestObject?.payload.binding_message) === bindingMessage);
      if (!grant || !backchannel) throw new Error('the OP saw no backchannel request for this checkout');
      const authReqId = grant.authReqId;
      const payment: StartedPayment = {
        id,
        secret,
        bindingMessage,
        backchannel,
        grant,
        authReqId,
        polls: () => op.requestsTo('token').filter((r) => r.form.auth_req_id === authReqId),
        paymentCalls: () => op.requestsTo('payments').filter((r) => r.headers['idempotency-key'] === id),
      };
      started.push(payment);
      return payment;
    },
    status,
    settle: (p, statuses = ['succeeded', 'failed', 'canceled'], timeoutMs = 10_000) =>
      waitForStatus(url, p.id, p.secret, statuses, timeoutMs),
    nextPollAt,
    async waitForNextPoll(p, after = 0) {
      return waitFor(
        async () => {
          const leased = await service.redis.zscore(service.keys.scheduleOf(`poll:${p.id}`).leases, `poll:${p.id}`);
          const at = leased === null ? await nextPollAt(p) : null;
          return at !== null && at > after ? at : undefined;
        },
        5_000,
        `the next poll of ${p.id}`,
      );
    },
    async drive(p, done, timeoutMs = 10_000) {
      await waitFor(
        async () => {
          if (await done()) return true;
          for (const member of [`poll:${p.id}`, `submit:${p.id}`]) {
            const due = await service.redis.zscore(service.keys.dueOf(member).key, member);
            if (due !== null) clock.advance(Math.max(0, Number(due) - clock.now()));
          }
          return false;
        },
        timeoutMs,
        `payment ${p.id} to get there`,
      );
    },
    async cancelOpen() {
      for (const p of started.splice(0)) {
        await api(url, 'POST', `/payments/${p.id}/cancel`, { headers: { authorization: `Bearer ${p.secret}` } });
      }
    },
  };
}

/** Milliseconds between consecutive requests. */
export function gaps(requests: RecordedRequest[]): number[] {
  return requests.slice(1).map((r, i) => r.at - requests[i]!.at);
}

export interface ConformanceHarness {
  /** Set in beforeAll. */
  op: ScriptedOp;
  svc: ServiceAgainstOp;
  clock: TestClock;
  /** Moves the shared clock forward to `at` (never back). */
  advanceTo(at: number): void;
}

/**
 * The set-up every conformance file shares: one scripted OP (with its Open Banking resources when
 * `opOptions.openBanking` serves them, and the service on that profile) and one service on a shared
 * test clock, open payments canceled and scripts cleared after each test, both closed at the end.
 */
export function useConformanceHarness(
  opOptions: Partial<Omit<ScriptedOpOptions, 'certs' | 'clock'>> = {},
  env: Record<string, string> = {},
): ConformanceHarness {
  const clock = createTestClock();
  const h = {
    clock,
    advanceTo(at: number) {
      clock.advance(Math.max(0, at - clock.now()));
    },
  } as ConformanceHarness;
  beforeAll(async () => {
    h.op = await startScriptedOp({ certs: testCertificates(), interval: 1, clock, ...opOptions });
    h.svc = await startServiceAgainst(h.op, env, { clock, openBanking: opOptions.openBanking !== undefined });
  });
  afterEach(async () => {
    await h.svc.cancelOpen();
    h.op.reset();
  });
  afterAll(async () => {
    await h.svc.close();
    await h.op.close();
  });
  return h;
}
