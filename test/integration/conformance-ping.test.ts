import { randomBytes } from 'node:crypto';
import { base64url } from 'jose';
import { sha256 } from '../../src/crypto/hashing.js';
import { api, waitFor, waitForStatus } from '../support/api.js';
import { replies } from '../support/scripted-op.js';
import { type StartedPayment, useConformanceHarness } from '../support/service-against-op.js';
import { startTestService, type SandboxService } from '../support/service.js';

/**
 * Conformance (issue 4), ping mode (CIBA Core §10.2): the service against the scripted OP with
 * CIBA_DELIVERY_MODE=ping, and against the sandbox bank end to end.
 */

const h = useConformanceHarness({ expiresIn: 300 }, { CIBA_DELIVERY_MODE: 'ping', CIBA_REQUESTED_EXPIRY: '300' });
const { clock, advanceTo } = h;
const SAFETY_POLL_MS = 30_000;

function pollNumber(p: StartedPayment, n: number, timeoutMs = 5000) {
  return waitFor(() => Promise.resolve(p.polls()[n - 1]), timeoutMs, `poll ${n} of ${p.id}`);
}

function notify(p: StartedPayment, authorization?: string) {
  return api(h.svc.url, 'POST', '/ciba/notify', {
    body: { auth_req_id: p.authReqId },
    headers: authorization === undefined ? {} : { authorization },
  });
}

describe('client_notification_token', () => {
  test('is fresh per checkout, has at least 128 bits, and only its hash is stored', async () => {
    const a = await h.svc.start();
    const b = await h.svc.start();
    const tokenA = a.backchannel.form.client_notification_token!;
    const tokenB = b.backchannel.form.client_notification_token!;
    expect(tokenA).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(base64url.decode(tokenA).length).toBeGreaterThanOrEqual(16);
    expect(base64url.decode(tokenB).length).toBeGreaterThanOrEqual(16);
    expect(tokenA).not.toBe(tokenB);
    expect(await h.svc.service.redis.get(h.svc.service.keys.notification(sha256(tokenA)))).toBe(a.id);
    for (const key of await h.svc.keys()) {
      expect(key).not.toContain(tokenA);
      if ((await h.svc.service.redis.type(key)) === 'string')
        expect(await h.svc.service.redis.get(key)).not.toContain(tokenA);
    }
  });
});

describe('POST /ciba/notify', () => {
  test('with the right bearer: 204 at once and a token request within ~100 ms', async () => {
    const reactions: number[] = [];
    for (let i = 0; i < 5; i++) {
      const p = await h.svc.start();
      expect(await h.svc.nextPollAt(p)).toBe((await h.svc.service.store.get(p.id))!.createdAt + SAFETY_POLL_MS);
      h.op.approve(p.authReqId);
      const sentAt = clock.now();
      const res = await notify(p, `Bearer ${p.grant.clientNotificationToken!}`);
      expect(res.status).toBe(204);
      const poll = await pollNumber(p, 1);
      reactions.push(poll.at - sentAt);
      expect(await h.svc.settle(p)).toMatchObject({ status: 'succeeded' });
      expect(p.polls()).toHaveLength(1);
      expect(p.paymentCalls()).toHaveLength(1);
    }
    reactions.sort((x, y) => x - y);
    console.info(`ping → token request (ms), sorted: ${reactions.join(', ')}`);
    expect(reactions[2]!).toBeLessThan(100); // median
    expect(reactions[4]!).toBeLessThan(250);
  });

  test.each(['bearer', 'BEARER'])(
    'with the scheme written %p: 204 and a token request (RFC 9110 §11.1, case-insensitive)',
    async (scheme) => {
      const p = await h.svc.start();
      h.op.approve(p.authReqId);
      const res = await notify(p, `${scheme} ${p.grant.clientNotificationToken!}`);
      expect(res.status).toBe(204);
      await pollNumber(p, 1);
      expect(await h.svc.settle(p)).toMatchObject({ status: 'succeeded' });
    },
  );

  test.each([
    ['a wrong bearer', () => `Bearer ${randomBytes(32).toString('base64url')}`],
    [
      'another payment’s token in another scheme',
      (other: StartedPayment) => `Basic ${other.grant.clientNotificationToken!}`,
    ],
    ['no Authorization', () => undefined],
    ['an empty bearer', () => 'Bearer '],
  ])('with %s: 401, no redirect, no token request', async (_name, header) => {
    const p = await h.svc.start();
    h.op.approve(p.authReqId);
    const res = await notify(p, header(p));
    expect(res.status).toBe(401);
    expect(res.headers.location).toBeUndefined();
    expect(String(res.headers['www-authenticate'])).toMatch(/^Bearer/);
    await h.svc.idle();
    expect(p.polls()).toHaveLength(0);
    expect(await h.svc.nextPollAt(p)).toBe((await h.svc.service.store.get(p.id))!.createdAt + SAFETY_POLL_MS);
  });

  test("with the right bearer but another payment's auth_req_id: 400, no token request", async () => {
    const p = await h.svc.start();
    const other = await h.svc.start();
    h.op.approve(p.authReqId);
    const res = await api(h.svc.url, 'POST', '/ciba/notify', {
      body: { auth_req_id: other.authReqId },
      headers: { authorization: `Bearer ${p.grant.clientNotificationToken!}` },
    });
    expect(res.status).toBe(400);
    expect(res.json.code).toBe('invalid_request');
    await h.svc.idle();
    expect(p.polls()).toHaveLength(0);
    expect(other.polls()).toHaveLength(0);
  });

  test('the token of a finished payment no longer pulls a poll', async () => {
    const p = await h.svc.start();
    h.op.deny(p.authReqId);
    expect((await notify(p, `Bearer ${p.grant.clientNotificationToken!}`)).status).toBe(204);
    expect(await h.svc.settle(p)).toMatchObject({ status: 'failed', failure_code: 'access_denied' });
    expect((await notify(p, `Bearer ${p.grant.clientNotificationToken!}`)).status).toBe(204);
    await h.svc.idle();
    expect(p.polls()).toHaveLength(1);
  });

  test('a ping that arrives while a poll is in flight is not lost: the next poll follows at once', async () => {
    // the safety poll is on its way when the customer approves; the bank answered "pending" before
    h.op.script('token', { ...replies.tokenError('authorization_pending'), delayMs: 400 });
    const p = await h.svc.start();
    advanceTo((await h.svc.nextPollAt(p))!);
    const poll1 = await pollNumber(p, 1);
    h.op.approve(p.authReqId);
    expect((await notify(p, `Bearer ${p.grant.clientNotificationToken!}`)).status).toBe(204);
    const poll2 = await pollNumber(p, 2, 3000);
    expect(poll2.at - poll1.at).toBeLessThan(1500);
    expect(await h.svc.settle(p)).toMatchObject({ status: 'succeeded' });
  });
});

describe('safety-net poll', () => {
  test('a lost notification only delays the payment until the poll every max(interval, 30 s)', async () => {
    const p = await h.svc.start();
    const created = (await h.svc.service.store.get(p.id))!.createdAt;
    const due = await h.svc.nextPollAt(p);
    expect(due).toBe(created + SAFETY_POLL_MS);
    clock.advance(due! - clock.now() - 500);
    await h.svc.idle();
    expect(p.polls()).toHaveLength(0);
    advanceTo(due!);
    const poll1 = await pollNumber(p, 1); // authorization_pending
    expect(poll1.at - p.backchannel.at).toBeGreaterThanOrEqual(SAFETY_POLL_MS);
    const next = await h.svc.waitForNextPoll(p, poll1.at);
    expect(next - poll1.at).toBeGreaterThanOrEqual(SAFETY_POLL_MS);
    expect(next - poll1.at).toBeLessThan(SAFETY_POLL_MS + 300);
    h.op.approve(p.authReqId); // the bank's ping is lost
    advanceTo(next);
    expect(await h.svc.settle(p)).toMatchObject({ status: 'succeeded' });
    expect(p.polls()).toHaveLength(2);
    expect(p.paymentCalls()).toHaveLength(1);
  });

  test('slow_down in ping mode: the safety poll is max(interval + 5 s, 30 s)', async () => {
    h.op.script('token', replies.tokenError('slow_down'));
    const p = await h.svc.start();
    advanceTo((await h.svc.nextPollAt(p))!);
    const poll1 = await pollNumber(p, 1);
    const next = await h.svc.waitForNextPoll(p, poll1.at);
    expect(next - poll1.at).toBeGreaterThanOrEqual(SAFETY_POLL_MS);
    expect(next - poll1.at).toBeLessThan(SAFETY_POLL_MS + 300);
    expect((await h.svc.service.store.get(p.id))?.intervalMs).toBe(6000);
  });
});

describe('against the sandbox bank in ping mode', () => {
  let sys: SandboxService;
  beforeAll(async () => {
    sys = await startTestService({ bank: { sandbox: { deliveryMode: 'ping', interval: 1 } } });
  });
  afterAll(() => sys.close());

  test('approve → the bank pings → succeeded well before the 30 s safety poll, one transfer', async () => {
    const res = await api(sys.url, 'POST', '/checkout', {
      body: { items: [{ sku: 'tea-01', quantity: 1 }], login_hint: 'user' },
    });
    expect(res.status).toBe(202);
    const payment = res.json;
    const pending = await waitFor(async () =>
      (await sys.bank.pending('user')).find((r) => r.bindingMessage === payment.binding_message),
    );
    const approvedAt = Date.now();
    await sys.bank.approve(pending.id);
    const done = await waitForStatus(sys.url, payment.id, payment.client_secret, ['succeeded', 'failed'], 10_000);
    const tookMs = Date.now() - approvedAt;
    console.info(`sandbox bank, ping mode: approve → succeeded in ${tookMs} ms`);
    expect(done.status).toBe('succeeded');
    expect(tookMs).toBeLessThan(5000);
    const transfers = (await sys.bank.transfers()).filter((t) => t.idempotencyKey === payment.id);
    expect(transfers).toHaveLength(1);
    expect(transfers[0]).toMatchObject({ amount: '12.90', currency: 'EUR', endToEndId: payment.id });
  });
});
