import { Redis } from 'ioredis';
import { waitFor } from '../support/api.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { startScriptedOp, type Reply, type ScriptedOp } from '../support/scripted-op.js';
import {
  createTestClock,
  startServiceAgainst,
  type ServiceAgainstOp,
  type StartedPayment,
} from '../support/service-against-op.js';
import { testCertificates } from '../support/system.js';
import { PAYMENT_FIELD } from '../../src/store/payment-hash.js';

/**
 * Money moves only after the store has it on a replica (issue 12.2): the note that a bank payment
 * call is about to be made (`bank_at`, and with it the token and `processing`) must be acknowledged
 * by REDIS_WAIT_REPLICAS replicas before the call; and a refusal is never read as a first attempt
 * without the bank's record, since a failover can lose that note.
 *
 * A private primary with one replica of its own (never the shared Redis): the replica is killed to
 * make WAIT fall short, and started again.
 */
describe('the bank is called only once the call is on a replica', () => {
  const clock = createTestClock();
  let primary: PrivateRedis;
  let replica: PrivateRedis;
  let op: ScriptedOp;
  let svc: ServiceAgainstOp;

  const connectedReplicas = async (): Promise<number> =>
    Number(/connected_slaves:(\d+)/.exec(await svc.service.redis.info('replication'))?.[1] ?? 0);

  beforeAll(async () => {
    primary = await startPrivateRedis();
    replica = await startPrivateRedis(['--replicaof', '127.0.0.1', String(primary.port)]);
    op = await startScriptedOp({ certs: testCertificates(), interval: 1, clock });
    svc = await startServiceAgainst(
      op,
      { REDIS_URL: primary.url, REDIS_CLUSTER_NODES: '', REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '50' },
      { clock },
    );
    await waitFor(async () => ((await connectedReplicas()) === 1 ? true : undefined), 10_000, 'the replica');
  }, 30_000);

  afterAll(async () => {
    await svc.close();
    await op.close();
    await replica.destroy();
    await primary.destroy();
  });

  async function approveAndPoll(): Promise<StartedPayment> {
    const p = await svc.start();
    op.approve(p.authReqId);
    clock.advance(Math.max(0, (await svc.nextPollAt(p))! - clock.now()));
    return p;
  }

  const submitDueAt = async (p: StartedPayment) =>
    svc.service.redis.zscore(svc.service.keys.dueOf(p.id).key, `submit:${p.id}`);

  const alarms = async () =>
    (await svc.service.metrics.registry.getMetricsAsJSON())
      .find((m) => m.name === 'operator_alarms_total')
      ?.values.find((v) => v.labels.alarm === 'bank_call_not_replicated')?.value ?? 0;

  test('when no replica acknowledges the note of the call, then the bank is not called and the payment stays processing; once one does, it is paid once', async () => {
    await replica.kill();
    await waitFor(async () => ((await connectedReplicas()) === 0 ? true : undefined), 10_000, 'the replica gone');
    const p = await approveAndPoll();

    // Tried, refused by the store's check, rescheduled: an alarm per try, never a bank call.
    await waitFor(
      async () => ((await alarms()) >= 1 && (await submitDueAt(p)) !== null ? true : undefined),
      10_000,
      'an alarm',
    );
    expect(await svc.status(p)).toMatchObject({ status: 'processing', failure_code: null });
    expect(p.paymentCalls()).toHaveLength(0);
    clock.advance(Math.max(0, Number(await submitDueAt(p)) - clock.now()));
    await waitFor(async () => ((await alarms()) >= 2 ? true : undefined), 10_000, 'a second try');
    expect(p.paymentCalls()).toHaveLength(0);
    expect(await svc.status(p)).toMatchObject({ status: 'processing' });

    await replica.start();
    await waitFor(async () => ((await connectedReplicas()) === 1 ? true : undefined), 10_000, 'the replica back');
    // Connected is not yet acknowledging (the full resync comes first); until WAIT counts it, driving
    // the clock would only retry up to the token's expiry, and the payment would rightly fail unpaid.
    await waitFor(async () => ((await svc.service.redis.wait(1, 200)) === 1 ? true : undefined), 10_000, 'acks');
    await svc.drive(p, async () => (await svc.status(p)).status !== 'processing');
    expect(await svc.status(p)).toMatchObject({ status: 'succeeded' });
    expect(p.paymentCalls()).toHaveLength(1);
    // The note the call went out with is on the replica.
    const onReplica = new Redis(replica.url);
    try {
      expect(await onReplica.hget(svc.service.keys.payment(p.id), PAYMENT_FIELD.bankCalledAt)).not.toBeNull();
    } finally {
      onReplica.disconnect();
    }
  }, 60_000);

  test('when the bank refuses a first attempt, then one lookup decides: nothing booked → failed/bank_rejected', async () => {
    const refusal: Reply = { status: 403, json: { error: 'insufficient_scope' } };
    op.script('payments', refusal);
    const p = await approveAndPoll();
    expect(await svc.settle(p)).toMatchObject({ status: 'failed', failure_code: 'bank_rejected' });
    expect(p.paymentCalls()).toHaveLength(1);
    expect(op.requestsTo('lookup').filter((r) => r.query.end_to_end_id === p.id)).toHaveLength(1);
  }, 30_000);
});
