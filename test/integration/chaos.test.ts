import { Redis } from 'ioredis';
import type { SandboxBank } from '../../src/sandbox/bank.js';
import { createKeys } from '../../src/store/keys.js';
import { api, waitFor } from '../support/api.js';
import { assertBuilt, killAll, serviceEnv, spawnService, type ServiceProcess } from '../support/processes.js';
import { deleteKeysWithPrefix } from '../support/redis.js';
import { startTestBank, testCertificates, uniquePrefix } from '../support/system.js';
import { decodeStatus, PAYMENT_FIELD } from '../../src/store/payment-hash.js';

/**
 * Chaos (issue 5): several worker processes and one API process on one Redis prefix, a few hundred
 * checkouts decided at random times (approve, deny, never → expiry, approve after a cancel), bank
 * payment calls failing in bursts, and workers SIGKILLed at random moments and restarted. At the
 * end every payment is terminal and the bank holds exactly one transfer per succeeded payment.
 */
const PAYMENTS = Number(process.env.CHAOS_PAYMENTS ?? 240);
const WORKERS = 3;
const LEASE_MS = 3000;
const EXPIRY_S = 25;
const CREATE_WINDOW_MS = 15_000;
const DECIDE_WINDOW_MS = 18_000;
const KILL_WINDOW_MS = 40_000;
const SETTLE_TIMEOUT_MS = 60_000;

type Plan = 'approve' | 'deny' | 'never' | 'cancel_then_approve';

function pickPlan(): Plan {
  const r = Math.random();
  if (r < 0.75) return 'approve';
  if (r < 0.87) return 'deny';
  if (r < 0.93) return 'never';
  return 'cancel_then_approve';
}

/**
 * The only fixed delays of this suite, and on purpose: they are the chaos (when a worker is killed
 * and comes back, when the bank fails, when a checkout arrives, when a customer decides, how often
 * a customer looks at the phone, a storefront's retry pause), never a wait for an outcome.
 */
const chaosDelay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('chaos: SIGKILLed workers, random approvals, failing bank calls', () => {
  const prefix = uniquePrefix('chaos');
  const logs: string[] = [];
  const bankLines: string[] = [];
  const procs = new Set<ServiceProcess>();
  let bank: SandboxBank;
  let env: Record<string, string>;
  let apiProc: ServiceProcess;
  let redis: Redis;

  beforeAll(async () => {
    assertBuilt();
    const certs = testCertificates();
    bank = await startTestBank(prefix, { log: (line) => bankLines.push(line) });
    env = serviceEnv({
      bank,
      certs,
      prefix: `${prefix}svc:`,
      extra: {
        CIBA_REQUESTED_EXPIRY: String(EXPIRY_S),
        WORKER_LEASE_MS: String(LEASE_MS),
        BANK_TIMEOUT_MS: '5000',
        WEBHOOK_TIMEOUT_MS: '2000',
        WORKER_CONCURRENCY: '64',
        SHUTDOWN_TIMEOUT_MS: '1000',
      },
    });
    redis = new Redis('redis://127.0.0.1:6379');
    apiProc = await spawnService('api', 'api', env, logs);
    procs.add(apiProc);
  }, 30_000);

  afterAll(async () => {
    await killAll(procs);
    await bank.close();
    redis.disconnect();
    await deleteKeysWithPrefix(prefix);
  });

  test('every payment ends terminal; one transfer per succeeded payment, none for the others', async () => {
    // Started together: each start is mostly waiting (Redis, bank discovery), not CPU.
    const workers: (ServiceProcess | null)[] = await Promise.all(
      Array.from({ length: WORKERS }, async (_, i) => {
        const w = await spawnService(`worker-${i}`, 'worker', env, logs);
        procs.add(w);
        return w;
      }),
    );
    // The windows start once the workers run (starting them takes long on a loaded machine).
    const t0 = Date.now();

    // Killer: every 0.7–2.5 s a random worker gets SIGKILL and comes back 0–1.5 s later.
    let kills = 0;
    let restarts = 0;
    const state = { chaos: true };
    // Once every payment has settled the killer and the faults stop at once, not after their pause.
    let endChaos: () => void = () => undefined;
    const chaosEnded = new Promise<void>((resolve) => {
      endChaos = resolve;
    });
    const pause = (ms: number) => Promise.race([chaosDelay(ms), chaosEnded]);
    const chaosOn = () => state.chaos; // read after a pause (a plain read would stay narrowed)
    const killer = (async () => {
      while (state.chaos && Date.now() - t0 < KILL_WINDOW_MS) {
        await pause(700 + Math.random() * 1800);
        const i = Math.floor(Math.random() * WORKERS);
        const victim = workers[i];
        if (!chaosOn() || !victim?.alive()) continue;
        victim.child.kill('SIGKILL');
        await victim.exited;
        kills++;
        workers[i] = null;
        await pause(Math.random() * 1500);
        if (!chaosOn()) break;
        const fresh = await spawnService(`worker-${i}-${kills}`, 'worker', env, logs);
        procs.add(fresh);
        workers[i] = fresh;
        restarts++;
      }
    })();

    // Bank faults: bursts of 500s on the payment API.
    const faults = (async () => {
      while (state.chaos && Date.now() - t0 < KILL_WINDOW_MS) {
        await pause(3000 + Math.random() * 4000);
        if (chaosOn()) await bank.failNextPayments(1 + Math.floor(Math.random() * 8));
      }
      // The bank is well again: a burst left unspent must not fall on the last payment still
      // retrying (alone, it would meet every 500 of it, one back-off of up to 8 s apart).
      await bank.failNextPayments(0);
    })();

    // Checkouts over CREATE_WINDOW_MS, each with a plan.
    const payments = new Map<string, { id: string; plan: Plan; binding: string }>();
    const byBinding = new Map<string, { id: string; plan: Plan }>();
    const creations: Promise<void>[] = [];
    for (let n = 0; n < PAYMENTS; n++) {
      const plan = pickPlan();
      creations.push(
        (async () => {
          await chaosDelay(Math.random() * CREATE_WINDOW_MS);
          // As a storefront does: a 503 (the bank slow to answer on a loaded machine) is retried
          // with the same Idempotency-Key.
          const checkout = () =>
            api(apiProc.url!, 'POST', '/checkout', {
              body: { items: [{ sku: 'tea-01', quantity: 1 + (n % 3) }], login_hint: 'user' },
              headers: { 'idempotency-key': `${prefix}${n}` },
            });
          let res = await checkout();
          for (let retry = 0; res.status === 503 && retry < 5; retry++) {
            await chaosDelay(1000);
            res = await checkout();
          }
          if (res.status !== 202) {
            const lines = apiProc.lines.filter((l) => /"level":(40|50)/.test(l)).slice(-5);
            throw new Error(`checkout answered ${res.status}: ${JSON.stringify(res.json)}\n${lines.join('\n')}`);
          }
          const p = { id: res.json.id as string, plan, binding: res.json.binding_message as string };
          payments.set(p.id, p);
          byBinding.set(p.binding, p);
          if (plan === 'cancel_then_approve') {
            const c = await api(apiProc.url!, 'POST', `/payments/${p.id}/cancel`, {
              headers: { authorization: `Bearer ${env.SHOP_API_KEY}` },
            });
            // On a loaded machine the customer may approve (and a worker record it) before the
            // cancel arrives: then the cancel is refused and the payment is an approved one.
            expect([200, 409]).toContain(c.status);
            if (c.status === 409) p.plan = 'approve';
          }
        })(),
      );
    }

    // The customers: each bank request decided at a random time, as planned.
    const decided = new Set<string>();
    const approvedAt = new Map<string, number>(); // payment id → when the bank recorded the approval
    const decisions: Promise<void>[] = [];
    const customers = (async () => {
      while (decided.size < PAYMENTS && Date.now() - t0 < CREATE_WINDOW_MS + 5000) {
        for (const req of await bank.pending('user')) {
          const p = byBinding.get(req.bindingMessage);
          if (!p || decided.has(req.id)) continue;
          decided.add(req.id);
          if (p.plan === 'never') continue;
          decisions.push(
            (async () => {
              await chaosDelay(Math.random() * DECIDE_WINDOW_MS * 0.6);
              if (p.plan === 'deny') await bank.deny(req.id);
              else {
                await bank.approve(req.id);
                approvedAt.set(p.id, Date.now());
              }
            })(),
          );
        }
        await chaosDelay(150);
      }
    })();

    await Promise.all(creations);
    await customers;
    await Promise.all(decisions);
    expect(payments.size).toBe(PAYMENTS);

    // Everything terminal, bounded.
    const key = createKeys(env.REDIS_PREFIX ?? '').payment;
    const read = async () =>
      Promise.all(
        [...payments.values()].map(async (p) => {
          const [status, failure, bankId, updatedAt] = await redis.hmget(
            key(p.id),
            PAYMENT_FIELD.status,
            PAYMENT_FIELD.failureCode,
            PAYMENT_FIELD.bankPaymentId,
            PAYMENT_FIELD.updatedAt,
          );
          return { ...p, status: decodeStatus(status), failure, bankId, updatedAt: Number(updatedAt) };
        }),
      );
    const terminal = new Set(['succeeded', 'failed', 'canceled']);
    // Past the deadline the assertions below name the payments that did not settle.
    const final = await waitFor(
      async () => {
        const all = await read();
        return all.every((p) => terminal.has(p.status ?? '')) && all;
      },
      SETTLE_TIMEOUT_MS,
      'every payment to be terminal',
      500, // 240 reads a look: leave the machine to the workers
    ).catch(read);
    state.chaos = false;
    endChaos();
    await killer;
    await faults;

    const transfers = await bank.transfers();
    const transfersByKey = new Map<string, typeof transfers>();
    for (const t of transfers)
      transfersByKey.set(t.idempotencyKey, [...(transfersByKey.get(t.idempotencyKey) ?? []), t]);
    const duplicates = [...transfersByKey.values()].filter((ts) => ts.length > 1).length;
    const lost = final.filter((p) => !terminal.has(p.status ?? ''));
    const succeeded = final.filter((p) => p.status === 'succeeded');
    const count = (pred: (p: (typeof final)[number]) => boolean) => final.filter(pred).length;
    // Approval → succeeded (issue 11.5): how long a killed worker's payments wait for another worker.
    const waits = succeeded
      .filter((p) => p.plan === 'approve' && approvedAt.has(p.id))
      .map((p) => p.updatedAt - (approvedAt.get(p.id) ?? 0))
      .sort((a, b) => a - b);
    const pct = (q: number) => waits[Math.min(waits.length - 1, Math.floor(q * waits.length))] ?? NaN;
    const figures = {
      payments: final.length,
      succeeded: succeeded.length,
      denied: count((p) => p.failure === 'access_denied'),
      expired: count((p) => p.failure === 'expired'),
      canceled: count((p) => p.status === 'canceled'),
      otherFailures: count((p) => p.status === 'failed' && p.failure !== 'access_denied' && p.failure !== 'expired'),
      kills,
      restarts,
      transfers: transfers.length,
      duplicates,
      lost: lost.length,
      runtimeS: Math.round((Date.now() - t0) / 100) / 10,
      leaseMs: LEASE_MS,
      renewEveryMs: Math.floor(LEASE_MS / 3),
      approvalToSucceededMs: { n: waits.length, p50: pct(0.5), p99: pct(0.99), max: waits.at(-1) },
    };
    console.log(`chaos figures: ${JSON.stringify(figures)}`);
    if (process.env.CHAOS_DEBUG)
      console.log(
        logs
          .filter((l) => /"level":(40|50|60)/.test(l))
          .slice(0, 15)
          .join('\n'),
      );
    if (figures.otherFailures > 0) {
      console.log(
        `other failures: ${JSON.stringify(final.filter((p) => p.status === 'failed' && !['access_denied', 'expired'].includes(p.failure ?? '')).map((p) => [p.plan, p.failure]))}`,
      );
    }

    // A payment that did not settle: what the processes said about it, to find out why.
    for (const p of lost) console.log(`lost ${p.id}:\n${logs.filter((l) => l.includes(p.id)).join('\n')}`);
    if (process.env.CHAOS_DEBUG)
      for (const p of final.filter((q) => q.failure === 'authorization_error').slice(0, 2))
        console.log(`${p.plan} ${p.id} authorization_error:\n${logs.filter((l) => l.includes(p.id)).join('\n')}`);
    if (lost.length > 0) console.log(`bank errors:\n${bankLines.filter((l) => l.includes('error')).join('\n')}`);
    expect(lost.map((p) => `${p.id} ${p.plan} ${p.status}`)).toEqual([]);
    expect(duplicates).toBe(0);
    expect(kills).toBeGreaterThanOrEqual(5);
    // A killed worker's payment waits at most about one lease before another worker takes it over
    // (target p99 ≤ 5 s; bounded here with room for a loaded CI machine).
    expect(figures.approvalToSucceededMs.p99).toBeLessThan(LEASE_MS + 5000);
    // Exactly one transfer per succeeded payment, with the bank id the payment recorded.
    for (const p of succeeded) {
      const ts = transfersByKey.get(p.id) ?? [];
      expect(ts).toHaveLength(1);
      expect(ts[0]?.bankPaymentId).toBe(p.bankId);
    }
    // None for the others.
    for (const p of final.filter((q) => q.status !== 'succeeded'))
      expect(transfersByKey.get(p.id) ?? []).toHaveLength(0);
    expect(transfers).toHaveLength(succeeded.length);
    // Outcomes follow the customers' decisions, except a decision whose answer a killed worker took
    // with it: CIBA hands a token (or a denial) out once, so the re-poll gets invalid_grant and the
    // payment fails as authorization_error, with no money moved (a known loss: a SIGKILL during the
    // poll that carries the answer; how many depends on how many polls are in flight, i.e. on load).
    const answerLost = (p: (typeof final)[number]) =>
      (p.plan === 'approve' || p.plan === 'deny') && p.status === 'failed' && p.failure === 'authorization_error';
    for (const p of final.filter((q) => !answerLost(q))) {
      if (p.plan === 'approve') expect(p.status).toBe('succeeded');
      if (p.plan === 'deny') expect([p.status, p.failure]).toEqual(['failed', 'access_denied']);
      if (p.plan === 'never') expect([p.status, p.failure]).toEqual(['failed', 'expired']);
      if (p.plan === 'cancel_then_approve') expect(p.status).toBe('canceled');
    }
    // At most about one decided answer in flight per kill.
    expect(final.filter(answerLost).length).toBeLessThanOrEqual(Math.max(2, kills));
  }, 150_000);
});
