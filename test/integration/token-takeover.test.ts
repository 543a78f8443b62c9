import type { Service } from '../../src/composition/service.js';
import { PAYMENT_FIELD } from '../../src/store/payment-hash.js';
import { waitFor } from '../support/api.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { SINGLE_URL } from '../support/redis.js';
import { replies, startScriptedOp, type RecordedRequest, type Reply, type ScriptedOp } from '../support/scripted-op.js';
import {
  createTestClock,
  startServiceAgainst,
  type ServiceAgainstOp,
  type StartedPayment,
} from '../support/service-against-op.js';
import { testCertificates } from '../support/system.js';

/**
 * A token spent during a takeover. Worker A receives the token (the bank hands it out once) and
 * cannot record it: its store connection is cut (a TCP proxy in front of Redis resets it) until its
 * lease runs out. Worker B, on the same Redis without the proxy, takes the poll over and polls
 * again; the bank answers invalid_grant. B must not fail the payment at once: A may record the
 * token yet. B re-reads the payment after a grace and fails it only if A never did.
 */
describe('a token spent by the worker whose poll was taken over', () => {
  const clock = createTestClock();
  const LEASE_MS = 1000;
  let proxy: FaultProxy;
  let op: ScriptedOp;
  let a: ServiceAgainstOp;
  let b: Service;

  beforeEach(async () => {
    proxy = await startFaultProxy();
    proxy.setUpstream(6379);
    op = await startScriptedOp({ certs: testCertificates(), interval: 1, clock });
    a = await startServiceAgainst(
      op,
      {
        REDIS_URL: `redis://127.0.0.1:${String(proxy.port)}`,
        REDIS_CLUSTER_NODES: '',
        WORKER_LEASE_MS: String(LEASE_MS),
        BANK_TIMEOUT_MS: '10000', // a poll the test holds at the bank for a few seconds is not timed out
      },
      { clock },
    );
  }, 30_000);

  afterEach(async () => {
    proxy.setMode('pass'); // A's write, if it still tries, finds the payment settled
    await a.close(); // closes B too (started from A)
    await op.close();
    await proxy.close();
  });

  const spentGrantOf = (p: StartedPayment) => b.redis.hget(b.keys.payment(p.id), PAYMENT_FIELD.spentGrant);
  const statusOf = async (p: StartedPayment) => (await b.store.get(p.id))?.status;

  /** A gets the token and loses its store; its lease expires; B starts, takes the poll over and hears invalid_grant. */
  async function holderCutOffAfterTheToken(): Promise<{ p: StartedPayment; failAt: number }> {
    const p = await a.start();
    op.approve(p.authReqId);
    let issued: RecordedRequest | undefined;
    op.script('token', async (req) => {
      p.grant.state = 'consumed'; // asked again, the bank answers invalid_grant
      proxy.setMode('reset');
      issued = req;
      return (op.tokenSuccess() as (r: RecordedRequest) => Reply | Promise<Reply>)(req);
    });
    clock.advance(Math.max(0, (await a.nextPollAt(p))! - clock.now()));
    const recordFailures = () => a.logs.filter((l) => l.includes('recording the final CIBA answer failed')).length;
    await waitFor(() => issued !== undefined && recordFailures() > 0, 10_000, 'A to hold the token it cannot record');

    clock.advance(2 * LEASE_MS); // A's lease runs out (its renewals fail)
    b = await a.startAnother({ REDIS_URL: SINGLE_URL });
    // B's poll is the takeover's: the bank answers invalid_grant. The payment must still be open.
    await waitFor(
      async () => (await spentGrantOf(p)) !== null || (await statusOf(p)) !== 'pending_authorization',
      10_000,
      "B's poll after the takeover",
    );
    expect(p.polls()).toHaveLength(2);
    expect(await statusOf(p)).toBe('pending_authorization');
    const failAt = Number((await spentGrantOf(p))?.split(':')[0]);
    expect(failAt).toBeGreaterThan(clock.now());
    return { p, failAt };
  }

  test('when the holder records its token during the grace, then the payment succeeds with one transfer', async () => {
    const { p, failAt } = await holderCutOffAfterTheToken();

    proxy.setMode('pass'); // A's store is back: its retries record the token
    await waitFor(async () => (await statusOf(p)) === 'succeeded', 15_000, 'the payment to succeed');
    clock.advance(Math.max(0, failAt - clock.now()) + 1); // past the grace: nothing more happens
    await waitFor(
      async () => (await b.redis.zscore(b.keys.dueOf(`poll:${p.id}`).key, `poll:${p.id}`)) === null,
      5000,
      'no poll left',
    );

    expect(await statusOf(p)).toBe('succeeded');
    expect(p.paymentCalls()).toHaveLength(1);
    expect(op.bookings.filter((x) => x.idempotencyKey === p.id)).toHaveLength(1);
    expect(p.polls()).toHaveLength(2); // never a third poll with the spent auth_req_id
  }, 60_000);

  test('when the holder never records it, then the payment fails after the grace, with the code of today', async () => {
    const { p, failAt } = await holderCutOffAfterTheToken();

    expect(await statusOf(p)).toBe('pending_authorization');
    clock.advance(Math.max(0, failAt - clock.now()) + 1);
    await waitFor(async () => (await statusOf(p)) === 'failed', 10_000, 'the payment to fail');

    expect((await b.store.get(p.id))?.failureCode).toBe('authorization_error');
    expect(p.paymentCalls()).toHaveLength(0);
    expect(p.polls()).toHaveLength(2);
  }, 60_000);
  test('when a worker hears invalid_grant after its own lease lapsed, then it waits for the worker that took the poll over and got the token', async () => {
    // A's poll reaches the bank and waits there; meanwhile A loses its store (its renewals fail) and
    // its lease runs out. B takes the poll over and gets the token, but its answer is still on the way
    // when A's invalid_grant arrives. A is no takeover itself, yet it must not fail the payment.
    const p = await a.start();
    op.approve(p.authReqId);
    let answerA: (reply: Reply) => void = () => undefined;
    let answerB: () => void = () => undefined;
    let askedB = false;
    op.script(
      'token',
      () => {
        proxy.setMode('reset');
        return new Promise<Reply>((resolve) => (answerA = resolve));
      },
      async (req) => {
        askedB = true;
        const reply = await (op.tokenSuccess() as (r: RecordedRequest) => Reply | Promise<Reply>)(req);
        p.grant.state = 'consumed'; // the token is B's: asked again, the bank says invalid_grant
        await new Promise<void>((resolve) => (answerB = resolve));
        return reply;
      },
    );
    clock.advance(Math.max(0, (await a.nextPollAt(p))! - clock.now()));
    await waitFor(() => p.polls().length === 1, 10_000, "A's poll at the bank");
    const renewalFailures = () => a.logs.filter((l) => l.includes('renewing leases failed')).length;
    await waitFor(() => renewalFailures() > 0, 10_000, "A's renewals to fail");
    clock.advance(2 * LEASE_MS); // A's lease runs out
    b = await a.startAnother({ REDIS_URL: SINGLE_URL });
    await waitFor(() => askedB, 10_000, "B's poll after the takeover");

    proxy.setMode('pass'); // A's store is back before its answer comes
    await waitFor(() => a.service.redis.status === 'ready', 10_000, "A's store connection");
    answerA(replies.tokenError('invalid_grant'));
    await waitFor(
      async () => (await spentGrantOf(p)) !== null || (await statusOf(p)) !== 'pending_authorization',
      10_000,
      "A's answer to be handled",
    );
    expect(await statusOf(p)).toBe('pending_authorization');

    answerB(); // B's token arrives and is recorded
    await waitFor(async () => (await statusOf(p)) === 'succeeded', 15_000, 'the payment to succeed');
    expect(p.paymentCalls()).toHaveLength(1);
    expect(op.bookings.filter((x) => x.idempotencyKey === p.id)).toHaveLength(1);
    expect(p.polls()).toHaveLength(2);
  }, 60_000);
});
