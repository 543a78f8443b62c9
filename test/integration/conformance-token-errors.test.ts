import { waitFor } from '../support/api.js';
import { replies, type Reply, type Step } from '../support/scripted-op.js';
import {
  gaps,
  startServiceAgainst,
  type ServiceAgainstOp,
  type StartedPayment,
  useConformanceHarness,
} from '../support/service-against-op.js';

/**
 * Conformance (issue 4), token endpoint: the whole service against the scripted OP. Each case
 * asserts the payment's outcome, the exact token polls and their spacing, and the payment calls.
 * The OP answers interval = 1 s; longer waits are jumps of the shared test clock.
 */

const h = useConformanceHarness({ expiresIn: 120 }, { CIBA_REQUESTED_EXPIRY: '120' });
const { clock, advanceTo } = h;

/** Skips the first interval (the first-poll timing has its own case) and waits for poll `n`. */
async function pollNumber(p: StartedPayment, n: number) {
  return waitFor(() => Promise.resolve(p.polls()[n - 1]), 5000, `poll ${n} of ${p.id}`);
}

async function firstPoll(s: ServiceAgainstOp, p: StartedPayment) {
  advanceTo((await s.nextPollAt(p))!);
  return pollNumber(p, 1);
}

/** After a final answer: nothing scheduled, and even an hour later the auth_req_id is never sent again. */
async function expectNoMorePolls(s: ServiceAgainstOp, p: StartedPayment) {
  const count = p.polls().length;
  expect(await s.nextPollAt(p)).toBeNull();
  clock.advance(3_600_000);
  await s.idle();
  expect(p.polls()).toHaveLength(count);
}

describe('authorization_pending', () => {
  test('the first poll comes not before interval after the backchannel answer, then one every interval; none after success', async () => {
    const p = await h.svc.start();
    await waitFor(() => Promise.resolve(p.polls().length >= 3), 6000, 'three polls');
    const polls = p.polls();
    const record = await h.svc.service.store.get(p.id);
    expect(polls[0]!.at - p.backchannel.at).toBeGreaterThanOrEqual(1000);
    expect(polls[0]!.at).toBeGreaterThanOrEqual(record!.createdAt + 1000);
    expect(polls[0]!.at - p.backchannel.at).toBeLessThan(1400);
    for (const gap of gaps(polls.slice(0, 3))) {
      expect(gap).toBeGreaterThanOrEqual(1000);
      expect(gap).toBeLessThan(1400);
    }
    expect(polls.every((r) => r.form.grant_type === 'urn:openid:params:grant-type:ciba')).toBe(true);
    h.op.approve(p.authReqId);
    expect(await h.svc.settle(p)).toMatchObject({ status: 'succeeded', failure_code: null });
    expect(p.paymentCalls()).toHaveLength(1);
    await expectNoMorePolls(h.svc, p);
  });
});

describe('slow_down', () => {
  test('adds 5 s to this and every later poll, cumulatively', async () => {
    h.op.script('token', replies.tokenError('slow_down'), replies.tokenError('slow_down'));
    const p = await h.svc.start();
    const first = await firstPoll(h.svc, p);

    const second = await h.svc.waitForNextPoll(p, first.at);
    expect(second - first.at).toBeGreaterThanOrEqual(6000);
    expect(second - first.at).toBeLessThan(6300);
    clock.advance(second - clock.now() - 300);
    await h.svc.idle();
    expect(p.polls()).toHaveLength(1); // not due yet
    advanceTo(second);
    const poll2 = await pollNumber(p, 2);

    const third = await h.svc.waitForNextPoll(p, poll2.at);
    expect(third - poll2.at).toBeGreaterThanOrEqual(11_000);
    expect(third - poll2.at).toBeLessThan(11_300);
    advanceTo(third);
    const poll3 = await pollNumber(p, 3); // authorization_pending: the raised interval stays

    const fourth = await h.svc.waitForNextPoll(p, poll3.at);
    expect(fourth - poll3.at).toBeGreaterThanOrEqual(11_000);
    expect(fourth - poll3.at).toBeLessThan(11_300);
    expect(gaps(p.polls())).toEqual([expect.any(Number), expect.any(Number)]);
    expect(gaps(p.polls())[0]).toBeGreaterThanOrEqual(6000);
    expect(gaps(p.polls())[1]).toBeGreaterThanOrEqual(11_000);
    expect((await h.svc.service.store.get(p.id))?.intervalMs).toBe(11_000);
    h.op.deny(p.authReqId);
    advanceTo(fourth);
    expect(await h.svc.settle(p)).toMatchObject({ status: 'failed', failure_code: 'access_denied' });
    expect(p.polls()).toHaveLength(4);
  });
});

describe('final token errors: failed, the auth_req_id never sent again, no payment call', () => {
  /** A scripted token error answer: the error code and its HTTP status. */
  const scripted = (error: string, status?: number) => (): void => {
    h.op.script('token', replies.tokenError(error, status));
  };
  const cases: [string, (p: StartedPayment) => void, string][] = [
    [
      'expired_token',
      (p) => {
        h.op.expire(p.authReqId);
      },
      'expired',
    ],
    [
      'access_denied',
      (p) => {
        h.op.deny(p.authReqId);
      },
      'access_denied',
    ],
    ['invalid_grant', scripted('invalid_grant'), 'authorization_error'],
    ['invalid_request', scripted('invalid_request'), 'authorization_error'],
    ['unsupported_grant_type', scripted('unsupported_grant_type'), 'authorization_error'],
    ['an unknown error code', scripted('something_new'), 'authorization_error'],
  ];
  test.each(cases)('%s', async (_name, arrange, failureCode) => {
    const p = await h.svc.start();
    arrange(p);
    await firstPoll(h.svc, p);
    // invalid_grant fails after a grace (another worker may hold the token): driven through it by the clock.
    await h.svc.drive(p, async () => (await h.svc.status(p)).status === 'failed');
    expect(await h.svc.settle(p)).toMatchObject({ status: 'failed', failure_code: failureCode });
    expect(p.polls()).toHaveLength(1);
    expect(p.paymentCalls()).toHaveLength(0);
    await expectNoMorePolls(h.svc, p);
  });
});

describe('our client credentials refused (invalid_client, unauthorized_client): retried with an alarm, not a failure', () => {
  test.each([
    ['invalid_client', 401],
    ['unauthorized_client', 400],
  ])(
    '%s twice, then the grant answers: polled again with backoff, the alarm raised, and the payment succeeds',
    async (error, status) => {
      h.op.script('token', replies.tokenError(error, status), replies.tokenError(error, status));
      const p = await h.svc.start();
      h.op.approve(p.authReqId);
      await firstPoll(h.svc, p);
      const second = await h.svc.waitForNextPoll(p, p.polls()[0]!.at);
      advanceTo(second);
      await pollNumber(p, 2);
      advanceTo(await h.svc.waitForNextPoll(p, p.polls()[1]!.at));
      expect(await h.svc.settle(p)).toMatchObject({ status: 'succeeded', failure_code: null });
      expect(p.polls()).toHaveLength(3);
      expect(p.paymentCalls()).toHaveLength(1);
      const alarms = h.svc.logs.filter((l) => l.includes(p.id) && l.includes('refused our client credentials'));
      expect(alarms.map((l) => (JSON.parse(l) as { level: number; error: string }).error)).toEqual([error, error]);
      expect(alarms.every((l) => (JSON.parse(l) as { level: number }).level === 50)).toBe(true);
      expect(await h.svc.service.metrics.registry.getSingleMetricAsString('operator_alarms_total')).toMatch(
        /alarm="token_client_rejected"\} [1-9]/,
      );
    },
  );

  test('invalid_client until the auth_req_id expires: failed/expired, never authorization_error', async () => {
    const p = await h.svc.start();
    const record = await h.svc.service.store.get(p.id);
    h.op.script('token', ...Array.from({ length: 50 }, () => replies.tokenError('invalid_client', 401)));
    await firstPoll(h.svc, p);
    let last = p.polls()[0]!.at;
    while ((await h.svc.status(p)).status === 'pending_authorization') {
      const next = await h.svc.waitForNextPoll(p, last).catch(() => null);
      if (next === null) break;
      advanceTo(next);
      last = next;
    }
    expect(await h.svc.settle(p)).toMatchObject({ status: 'failed', failure_code: 'expired' });
    expect(p.polls().every((r) => r.at <= record!.expiresAt)).toBe(true);
  });
});

describe('Retry-After on 429 and 503', () => {
  test('429 with Retry-After in seconds: the next poll waits exactly that long', async () => {
    h.op.script('token', { status: 429, headers: { 'retry-after': '3' }, json: { error: 'too_many_requests' } });
    const p = await h.svc.start();
    const poll1 = await firstPoll(h.svc, p);
    const next = await h.svc.waitForNextPoll(p, poll1.at);
    expect(next - poll1.at).toBeGreaterThanOrEqual(3000);
    expect(next - poll1.at).toBeLessThan(3300);
    clock.advance(next - clock.now() - 300);
    await h.svc.idle();
    expect(p.polls()).toHaveLength(1);
    advanceTo(next);
    const poll2 = await pollNumber(p, 2);
    expect(poll2.at - poll1.at).toBeGreaterThanOrEqual(3000);
    // the grant goes on normally
    const after = await h.svc.waitForNextPoll(p, poll2.at);
    expect(after - poll2.at).toBeLessThan(1300);
  });

  test('503 with Retry-After as an HTTP-date: the next poll waits until that date', async () => {
    let date = 0;
    const step: Step = (req) => {
      date = Math.floor((req.at + 5000) / 1000) * 1000;
      return { status: 503, headers: { 'retry-after': new Date(date).toUTCString() } };
    };
    h.op.script('token', step);
    const p = await h.svc.start();
    const poll1 = await firstPoll(h.svc, p);
    const next = await h.svc.waitForNextPoll(p, poll1.at);
    expect(next).toBeGreaterThanOrEqual(date);
    expect(next).toBeLessThan(date + 300);
    expect(next - poll1.at).toBeGreaterThan(4000);
    advanceTo(next);
    await pollNumber(p, 2);
  });

  test('a Retry-After beyond the expiry: the poll is due at the expiry, which ends the payment without a request', async () => {
    h.op.script('token', { status: 503, headers: { 'retry-after': '3600' } });
    const p = await h.svc.start();
    const poll1 = await firstPoll(h.svc, p);
    const expiresAt = (await h.svc.service.store.get(p.id))!.expiresAt;
    const next = await h.svc.waitForNextPoll(p, poll1.at);
    expect(next).toBe(expiresAt);
    advanceTo(next);
    expect(await h.svc.settle(p)).toMatchObject({ status: 'failed', failure_code: 'expired' });
    expect(p.polls()).toHaveLength(1);
    expect(p.paymentCalls()).toHaveLength(0);
    await expectNoMorePolls(h.svc, p);
  });
});

describe('server errors and network faults', () => {
  let fast: ServiceAgainstOp;
  beforeAll(async () => {
    fast = await startServiceAgainst(h.op, { BANK_TIMEOUT_MS: '300' }, { clock });
  });
  afterEach(() => fast.cancelOpen());
  afterAll(() => fast.close());

  test('500, connection reset, timeout, 502: exponential backoff with jitter, then back to the interval', async () => {
    h.op.script(
      'token',
      { status: 500, text: 'oops' },
      { status: 400, hangUp: true },
      { status: 400, delayMs: 1000, json: { error: 'authorization_pending' } },
      { status: 502, text: '<html>bad gateway</html>', headers: { 'content-type': 'text/html' } },
    );
    const p = await fast.start();
    let last = await firstPoll(fast, p);
    // attempt n waits a random time in [base·2ⁿ/2, base·2ⁿ], never less than the interval
    const bounds: [number, number][] = [
      [1000, 1100],
      [1000, 2100],
      // the timed-out request was given up after BANK_TIMEOUT_MS (300 ms; undici's coarse timers allow up to ~1 s more)
      [2000, 4100 + 1300],
      [4000, 8100],
      [1000, 1100], // authorization_pending again: the plain interval
    ];
    for (const [n, [lo, hi]] of bounds.entries()) {
      const next = await fast.waitForNextPoll(p, last.at);
      expect(next - last.at).toBeGreaterThanOrEqual(lo);
      expect(next - last.at).toBeLessThan(hi);
      if (n === bounds.length - 1) break;
      advanceTo(next);
      last = await pollNumber(p, n + 2);
    }
    expect((await fast.service.store.get(p.id))?.attempts).toBe(0);
    expect(p.polls()).toHaveLength(5);
    expect(await fast.status(p)).toMatchObject({ status: 'pending_authorization' });
  });

  test('payments failing together do not retry together (jitter)', async () => {
    const n = 5;
    h.op.script('token', ...Array.from({ length: 2 * n }, (): Reply => ({ status: 500 })));
    const payments: StartedPayment[] = [];
    for (let i = 0; i < n; i++) payments.push(await fast.start());
    advanceTo(Math.max(...(await Promise.all(payments.map((p) => fast.nextPollAt(p)))).map(Number)));
    const firsts = await Promise.all(payments.map((p) => pollNumber(p, 1)));
    const seconds = await Promise.all(payments.map((p, i) => fast.waitForNextPoll(p, firsts[i]!.at)));
    advanceTo(Math.max(...seconds));
    const polls2 = await Promise.all(payments.map((p) => pollNumber(p, 2)));
    const delays = await Promise.all(
      payments.map(async (p, i) => (await fast.waitForNextPoll(p, polls2[i]!.at)) - polls2[i]!.at),
    );
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(1000);
      expect(d).toBeLessThan(2100);
    }
    expect(Math.max(...delays) - Math.min(...delays)).toBeGreaterThan(30);
  });

  test('backing off never goes past the expiry; at the expiry the payment fails without another request', async () => {
    h.op.script('token', ...Array.from({ length: 40 }, (): Reply => ({ status: 500 })));
    const p = await fast.start();
    const expiresAt = (await fast.service.store.get(p.id))!.expiresAt;
    let last = await firstPoll(fast, p);
    for (;;) {
      const next = await fast.waitForNextPoll(p, last.at);
      expect(next).toBeLessThanOrEqual(expiresAt);
      advanceTo(next);
      if (next === expiresAt) break;
      last = await pollNumber(p, p.polls().length + 1);
    }
    expect(await fast.settle(p)).toMatchObject({ status: 'failed', failure_code: 'expired' });
    const polls = p.polls();
    expect(polls.length).toBeGreaterThanOrEqual(6);
    expect(polls.every((r) => r.at < expiresAt)).toBe(true);
    // the gaps grow (exponential backoff)
    const g = gaps(polls);
    expect(g[g.length - 1]!).toBeGreaterThan(g[0]! * 4);
    expect(p.paymentCalls()).toHaveLength(0);
    await expectNoMorePolls(fast, p);
  });
});

describe('unreadable token answers', () => {
  test('a 200 with malformed JSON: failed/authorization_error, never asked again, no payment call', async () => {
    h.op.script('token', {
      status: 200,
      text: '{"access_token": "at_1", "token_type": ',
      headers: { 'content-type': 'application/json' },
    });
    const p = await h.svc.start();
    await firstPoll(h.svc, p);
    expect(await h.svc.settle(p)).toMatchObject({ status: 'failed', failure_code: 'authorization_error' });
    expect(p.polls()).toHaveLength(1);
    expect(p.paymentCalls()).toHaveLength(0);
    await expectNoMorePolls(h.svc, p);
  });

  test('a 200 token response with a wrong content type: failed/authorization_error, no payment call', async () => {
    const success = h.op.tokenSuccess();
    h.op.script('token', async (req) => {
      const reply = typeof success === 'function' ? await success(req) : success;
      return { ...reply, headers: { ...reply.headers, 'content-type': 'text/html' } };
    });
    const p = await h.svc.start();
    await firstPoll(h.svc, p);
    expect(await h.svc.settle(p)).toMatchObject({ status: 'failed', failure_code: 'authorization_error' });
    expect(p.polls()).toHaveLength(1);
    expect(p.paymentCalls()).toHaveLength(0);
    await expectNoMorePolls(h.svc, p);
  });

  test('a 400 without an OAuth error (an HTML error page) decides nothing: polling goes on, and approval still pays', async () => {
    h.op.script('token', { status: 400, text: '<html>Bad Request</html>', headers: { 'content-type': 'text/html' } });
    const p = await h.svc.start();
    const poll1 = await firstPoll(h.svc, p);
    const next = await h.svc.waitForNextPoll(p, poll1.at);
    expect(next - poll1.at).toBeGreaterThanOrEqual(1000);
    h.op.approve(p.authReqId);
    advanceTo(next);
    expect(await h.svc.settle(p)).toMatchObject({ status: 'succeeded' });
    expect(p.polls()).toHaveLength(2);
    expect(p.paymentCalls()).toHaveLength(1);
  });
});

describe('interval 31 in the backchannel answer', () => {
  const h31 = useConformanceHarness({ interval: 31, expiresIn: 300 }, { CIBA_REQUESTED_EXPIRY: '300' });

  test('is honoured for the first and every later poll', async () => {
    const p = await h31.svc.start();
    const record = await h31.svc.service.store.get(p.id);
    expect(record?.intervalMs).toBe(31_000);
    const due = await h31.svc.nextPollAt(p);
    expect(due).toBe(record!.createdAt + 31_000);
    h31.clock.advance(due! - h31.clock.now() - 300);
    await h31.svc.idle();
    expect(p.polls()).toHaveLength(0);
    h31.advanceTo(due!);
    const poll1 = await pollNumber(p, 1);
    expect(poll1.at - p.backchannel.at).toBeGreaterThanOrEqual(31_000);
    const next = await h31.svc.waitForNextPoll(p, poll1.at);
    expect(next - poll1.at).toBeGreaterThanOrEqual(31_000);
    expect(next - poll1.at).toBeLessThan(31_300);
  });
});
