import { normaliseLoginHint } from '../../src/payments/login-hint.js';
import { api, waitFor } from '../support/api.js';
import { replies } from '../support/scripted-op.js';
import { ONE_TEA, type StartedPayment, useConformanceHarness } from '../support/service-against-op.js';

/**
 * Issue 11.6, push bombing: one customer (login_hint, normalised) gets at most one request waiting
 * on their phone, a growing wait after each denial, and hourly caps; every refusal happens before
 * the bank is asked and stores nothing. Against the scripted OP, which records every request.
 */
const h = useConformanceHarness(
  {},
  {
    CHECKOUT_MAX_PENDING_PER_LOGIN_HINT: '1',
    DENIAL_COOLDOWN_SECONDS: '3',
    DENIAL_COOLDOWN_MAX_SECONDS: '60',
    RATE_LIMIT_LOGIN_HINT_PER_HOUR: '4',
  },
);

const checkout = (loginHint: string, headers: Record<string, string> = {}) =>
  api(h.svc.url, 'POST', '/checkout', { body: { ...ONE_TEA, login_hint: loginHint }, headers });
const backchannels = () => h.op.requestsTo('backchannel').length;
const idempotencyKeys = async () => (await h.svc.keys()).filter((k) => k.includes(':idem:'));
const cancel = (p: StartedPayment) =>
  api(h.svc.url, 'POST', `/payments/${p.id}/cancel`, { headers: { authorization: `Bearer ${p.secret}` } });

async function denied(loginHint: string): Promise<StartedPayment> {
  const p = await h.svc.start(loginHint);
  h.op.deny(p.authReqId);
  expect(await h.svc.settle(p)).toMatchObject({ status: 'failed', failure_code: 'access_denied' });
  return p;
}

describe('one pending request per customer', () => {
  test('when the same customer (" User ", "USER", "ｕｓｅｒ") checks out while one request is pending, then 409 before the bank', async () => {
    const first = await h.svc.start('user');
    const sent = backchannels();
    const keysBefore = await idempotencyKeys();
    for (const hint of [' User ', 'USER', 'ｕｓｅｒ']) {
      const res = await checkout(hint, { 'idempotency-key': `second-${encodeURIComponent(hint)}` });
      expect(res.status).toBe(409);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json.code).toBe('checkout_pending');
      // Retry-After: when the waiting request expires (the bank's expires_in, up to minutes), not a blind second.
      const wait = Number(res.headers['retry-after']);
      const expiresIn = ((await h.svc.service.store.get(first.id))!.expiresAt - h.clock.now()) / 1000;
      expect(wait).toBeGreaterThan(expiresIn - 5);
      expect(wait).toBeLessThanOrEqual(Math.ceil(expiresIn) + 1);
    }
    expect(backchannels()).toBe(sent);
    expect(await idempotencyKeys()).toEqual(keysBefore);

    // Another customer is not held up; once the first request ends, the customer may start again.
    expect((await checkout('user2')).status).toBe(202);
    await cancel(first);
    const again = await checkout(' USER ');
    expect(again.status).toBe(202);
    // The bank got the trimmed, NFKC form; case is the bank's business.
    expect(h.op.requestsTo('backchannel').at(-1)?.form.login_hint).toBe('USER');
  });

  test('when two checkouts of one customer race, then exactly one reaches the bank', async () => {
    const sent = backchannels();
    const results = await Promise.all([checkout('racer'), checkout('Racer'), checkout('RACER')]);
    expect(results.map((r) => r.status).sort()).toEqual([202, 409, 409]);
    expect(backchannels()).toBe(sent + 1);
  });
});

describe("a checkout whose create's reply was lost", () => {
  test('when the payment was created but the checkout heard a fault, then its customer place is kept for that payment', async () => {
    const { store } = h.svc.service;
    const transition = store.transition.bind(store);
    // The create runs in Redis, then its reply is lost (a failover): the checkout settles, finds the payment.
    store.transition = async (request) => {
      const result = await transition(request);
      if (request.from !== null) return result;
      store.transition = transition;
      throw new Error('Connection is closed.');
    };
    try {
      const first = await checkout('lostreply', { 'idempotency-key': 'lost-reply' });
      expect(first.status).toBe(202);
      const sent = backchannels();
      const second = await checkout('LostReply');
      expect(second.status).toBe(409); // before: 202, a second push while the first waits for approval
      expect(second.json.code).toBe('checkout_pending');
      expect(backchannels()).toBe(sent);
    } finally {
      store.transition = transition;
    }
  });
});

describe('a checkout taken over after its request crashed', () => {
  test('when the retry that takes the key over finds the payment, then the customer place is kept for that payment', async () => {
    const { store, redis } = h.svc.service;
    const transition = store.transition.bind(store);
    const crash = { now: (): void => undefined };
    const crashed = new Promise<void>((resolve) => {
      crash.now = resolve;
    });
    // The create runs in Redis, then its request hangs (a crash before it keeps the place or ends its claim).
    store.transition = async (request) => {
      const result = await transition(request);
      if (request.from !== null) return result;
      store.transition = transition;
      await crashed;
      throw new Error('Connection is closed.');
    };
    const first = checkout('crashed', { 'idempotency-key': 'crashed' });
    try {
      let claim = '';
      await waitFor(
        async () => {
          for (const k of await idempotencyKeys())
            if ((await redis.hget(k, 'payment')) !== null && (await redis.hget(k, 'owner')) !== null) claim = k;
          return claim !== '' && store.transition === transition;
        },
        5000,
        'the payment created, its request hung',
      );
      await redis.hset(claim, 'held_until', 0); // its hold ran out
      const retry = await checkout('crashed', { 'idempotency-key': 'crashed' });
      expect(retry.status).toBe(202);
      const payment = String(retry.json.id);

      // Its place, held until the payment ends: the crashed request's hold (its only place before)
      // runs out with the claim's hold, while the payment may wait for approval for longer.
      const place = h.svc.service.keys.pendingCheckouts(normaliseLoginHint('crashed').limitKey);
      const expiresAt = (await store.get(payment))?.expiresAt;
      expect(await redis.zscore(place, payment)).toBe(String(expiresAt)); // before: null
    } finally {
      store.transition = transition;
      crash.now();
      await first;
    }
  });
});

describe('a growing wait after each denial', () => {
  test('when the customer declines, then the next request waits, and longer after a second denial', async () => {
    await denied('bob');
    const sent = backchannels();
    const cooling = await checkout('Bob');
    expect(cooling.status).toBe(429);
    expect(cooling.json.code).toBe('customer_cooling_down');
    const firstWait = Number(cooling.headers['retry-after']);
    expect(firstWait).toBeGreaterThanOrEqual(1);
    expect(firstWait).toBeLessThanOrEqual(3);
    expect(backchannels()).toBe(sent);

    // After the wait the customer may be asked again (a condition, not a sleep).
    const next = await waitFor(
      async () => {
        const res = await checkout('bob');
        return res.status === 202 ? res.json : undefined;
      },
      15_000,
      'the cool-down to end',
    );
    const grant = [...h.op.grants.values()].find((g) => g.bindingMessage === next.binding_message)!;
    h.op.deny(grant.authReqId);
    await waitFor(async () => {
      const r = await api(h.svc.url, 'GET', `/payments/${next.id}`, {
        headers: { authorization: `Bearer ${next.client_secret}` },
      });
      return r.json.status === 'failed';
    });
    const longer = await checkout('bob');
    expect(longer.json.code).toBe('customer_cooling_down');
    // 3 s × 2 for the second denial of the day.
    expect(Number(longer.headers['retry-after'])).toBeGreaterThan(3);
    expect(Number(longer.headers['retry-after'])).toBeLessThanOrEqual(6);
  });
});

describe('hourly cap per customer', () => {
  test('when a customer was asked as often as the hour allows, then 429 with the wait, before the bank', async () => {
    for (let i = 0; i < 4; i++) {
      const p = await h.svc.start('carol');
      await cancel(p);
    }
    const sent = backchannels();
    const res = await checkout('CAROL');
    expect(res.status).toBe(429);
    expect(res.json.code).toBe('rate_limited');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(60);
    expect(backchannels()).toBe(sent);
  });
});

describe('metric labels from the bank', () => {
  test("when the bank answers the token request with an unregistered error code, then it is counted as 'other'", async () => {
    const p = await h.svc.start('dave');
    h.op.script('token', replies.tokenError('made_up_error_1234'));
    expect(await h.svc.settle(p)).toMatchObject({ status: 'failed', failure_code: 'authorization_error' });
    const text = await h.svc.service.metrics.registry.getSingleMetricAsString('ciba_token_answers_total');
    expect(text).toContain('answer="other"');
    expect(text).not.toContain('made_up_error');
  });
});
