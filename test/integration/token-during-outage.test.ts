import { waitFor } from '../support/api.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { startScriptedOp, type RecordedRequest, type Reply, type ScriptedOp } from '../support/scripted-op.js';
import { createTestClock, startServiceAgainst, type ServiceAgainstOp } from '../support/service-against-op.js';
import { testCertificates } from '../support/system.js';

/**
 * A token approved while the store cannot take writes for longer than a few seconds (a primary
 * failing over; security review of issue 12). The bank hands a token out once: if the worker gave up
 * recording it and polled again, the bank would answer invalid_grant and the customer's approval
 * would end as a failed payment. The worker keeps the token in hand and retries until the store
 * answers, and never polls again meanwhile.
 *
 * The store's outage is real: the test's own redis-server is SIGKILLed the moment the bank issues
 * the token, and started again (its append-only file intact) 6 s later.
 */
describe('a token received while the store is away', () => {
  const clock = createTestClock();
  const OUTAGE_MS = 6000;
  let redis: PrivateRedis;
  let op: ScriptedOp;
  let svc: ServiceAgainstOp;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    op = await startScriptedOp({ certs: testCertificates(), interval: 1, clock });
    svc = await startServiceAgainst(op, { REDIS_URL: redis.url, REDIS_CLUSTER_NODES: '' }, { clock });
  }, 30_000);

  afterAll(async () => {
    await redis.start();
    await svc.close();
    await op.close();
    await redis.destroy();
  });

  test('when the store is away for 6 s after the bank issued the token, then the token is recorded once it is back, never polled for again, and the payment succeeds', async () => {
    const p = await svc.start();
    op.approve(p.authReqId);
    let issued: RecordedRequest | undefined;
    let storeDownAt = 0;
    op.script('token', async (req) => {
      p.grant.state = 'consumed'; // the bank hands out a token once; asked again it answers invalid_grant
      await redis.kill();
      storeDownAt = Date.now();
      issued = req;
      return (op.tokenSuccess() as (r: RecordedRequest) => Reply | Promise<Reply>)(req);
    });
    clock.advance(Math.max(0, (await svc.nextPollAt(p))! - clock.now()));

    // The worker got the token and cannot record it; the outage lasts longer than its old 2 s of tries.
    const recordFailures = () => svc.logs.filter((l) => l.includes('recording the final CIBA answer failed')).length;
    await waitFor(() => issued !== undefined && recordFailures() > 0, 10_000, 'the token and a failed record');
    await waitFor(() => Date.now() - storeDownAt >= OUTAGE_MS, OUTAGE_MS + 1000, 'the outage to last 6 s');
    await redis.start();

    const reconnected = () =>
      svc.service.redis.ping().then(
        () => true,
        () => false,
      );
    await waitFor(reconnected, 10_000, 'the service to reconnect');
    const statusNow = () =>
      svc.status(p).then(
        (s) => s.status,
        () => 'store away',
      );
    await svc.drive(p, async () => ['succeeded', 'failed'].includes(await statusNow()), 30_000);
    expect(await svc.status(p)).toMatchObject({ status: 'succeeded', failure_code: null });
    // The token request that got the token was the last one: no poll with a spent auth_req_id.
    expect(p.polls().at(-1)).toBe(issued);
    expect(p.paymentCalls()).toHaveLength(1);
  }, 60_000);
});
