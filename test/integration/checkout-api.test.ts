import { scanKeys } from '../support/redis.js';
import { api, waitFor, waitForStatus } from '../support/api.js';
import { startTestService, type SandboxService } from '../support/service.js';

const CART = { items: [{ sku: 'tea-02', quantity: 1 }], login_hint: 'user' };

async function countKeys(sys: SandboxService): Promise<number> {
  const [, keys] = await sys.service.redis.scan(
    '0',
    'MATCH',
    `${sys.service.keys.prefix}{s*}pay:pay_????????????????????`,
    'COUNT',
    10_000,
  );
  return keys.length;
}

describe('checkout API: validation, idempotency, cancel, expiry', () => {
  let sys: SandboxService;
  beforeAll(async () => {
    sys = await startTestService({
      bank: { sandbox: { interval: 1 } },
      env: {
        CIBA_REQUESTED_EXPIRY: '3',
        CALLBACK_ALLOWED_ORIGINS: 'https://shop.example',
        WEBHOOK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      },
    });
  });
  afterAll(async () => {
    await sys.close();
  });

  test.each([
    ['no items', { login_hint: 'user' }, '$.items'],
    ['empty items', { items: [], login_hint: 'user' }, '$.items'],
    [
      'a price from the client',
      { items: [{ sku: 'tea-01', quantity: 1, unit_amount: 1 }], login_hint: 'user' },
      '$.items[0]',
    ],
    ['a negative quantity', { items: [{ sku: 'tea-01', quantity: -1 }], login_hint: 'user' }, '$.items[0].quantity'],
    ['a fractional quantity', { items: [{ sku: 'tea-01', quantity: 1.5 }], login_hint: 'user' }, '$.items[0].quantity'],
    ['an unknown field', { ...CART, amount: 1 }, '$'],
    ['no login_hint', { items: CART.items }, '$.login_hint'],
    ['a callback on a foreign origin', { ...CART, callback_url: 'https://evil.example/x' }, '$.callback_url'],
  ])('when the body has %s, then it is refused with problem+json and nothing is stored', async (_name, body, path) => {
    const before = await countKeys(sys);
    // As the shop: an anonymous callback_url would be refused earlier (shop_key_required).
    const res = await api(sys.url, 'POST', '/checkout', {
      body,
      headers: { authorization: `Bearer ${sys.env.SHOP_API_KEY!}` },
    });
    expect([400, 422]).toContain(res.status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json.errors.map((e: { path: string }) => e.path)).toContain(path);
    expect(await countKeys(sys)).toBe(before);
    expect(await sys.bank.pending('user')).toHaveLength(0);
  });

  test('when the sku is not sold, then 422 unknown_sku and the bank is not asked', async () => {
    const res = await api(sys.url, 'POST', '/checkout', {
      body: { items: [{ sku: 'nope', quantity: 1 }], login_hint: 'user' },
    });
    expect(res.status).toBe(422);
    expect(res.json.code).toBe('unknown_sku');
    expect(await sys.bank.pending('user')).toHaveLength(0);
  });

  test('when the body is not JSON, too large, or not JSON-typed, then 400, 413 and 415', async () => {
    expect((await api(sys.url, 'POST', '/checkout', { raw: '{"items":' })).json.code).toBe('malformed_json');
    const big = await api(sys.url, 'POST', '/checkout', {
      raw: JSON.stringify({ ...CART, metadata: { a: 'x'.repeat(17_000) } }),
    });
    expect(big.status).toBe(413);
    const form = await api(sys.url, 'POST', '/checkout', {
      headers: { 'content-type': 'text/plain' },
      raw: 'hello',
    });
    expect(form.status).toBe(415);
  });

  test('when the same Idempotency-Key comes again, then the stored answer is replayed and the bank asked once', async () => {
    const key = `idem-${Date.now()}`;
    const first = await api(sys.url, 'POST', '/checkout', { body: CART, headers: { 'idempotency-key': key } });
    const second = await api(sys.url, 'POST', '/checkout', { body: CART, headers: { 'idempotency-key': key } });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.json).toEqual(first.json);
    expect(second.headers['idempotent-replayed']).toBe('true');
    // The stored replay is sealed: the client secret is not in Redis in the clear.
    const idemKeys = await scanKeys(sys.service.redis, `${sys.service.keys.prefix}idem:*`);
    expect(idemKeys.length).toBeGreaterThan(0);
    for (const k of idemKeys)
      expect((await sys.service.redis.hget(k, 'body')) ?? '').not.toContain(first.json.client_secret);
    expect(
      (await sys.bank.pending('user')).filter((p) => p.bindingMessage === first.json.binding_message),
    ).toHaveLength(1);
    expect(await sys.bank.pending('user')).toHaveLength(1);

    const other = await api(sys.url, 'POST', '/checkout', {
      body: { ...CART, items: [{ sku: 'tea-01', quantity: 3 }] },
      headers: { 'idempotency-key': key },
    });
    expect(other.status).toBe(422);
    expect(other.json.code).toBe('idempotency_key_reused');
    await api(sys.url, 'POST', `/payments/${first.json.id}/cancel`, {
      headers: { authorization: `Bearer ${first.json.client_secret}` },
    });
  });

  test('when two requests race with one Idempotency-Key, then one runs and the other gets 409 or the replay', async () => {
    const key = `race-${Date.now()}`;
    const [a, b] = await Promise.all([
      api(sys.url, 'POST', '/checkout', { body: CART, headers: { 'idempotency-key': key } }),
      api(sys.url, 'POST', '/checkout', { body: CART, headers: { 'idempotency-key': key } }),
    ]);
    const statuses = [a.status, b.status].sort();
    expect(statuses[0]).toBe(202);
    expect([202, 409]).toContain(statuses[1]);
    const ids = new Set([a, b].filter((r) => r.status === 202).map((r) => r.json.id));
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    const secret = (a.status === 202 ? a : b).json.client_secret;
    await api(sys.url, 'POST', `/payments/${id}/cancel`, { headers: { authorization: `Bearer ${secret}` } });
  });

  test('when a pending payment is canceled, then polling stops, it is canceled, and a second cancel after the end is harmless', async () => {
    const { json: p } = await api(sys.url, 'POST', '/checkout', { body: CART });
    const auth = { authorization: `Bearer ${p.client_secret}` };
    const res = await api(sys.url, 'POST', `/payments/${p.id}/cancel`, { headers: auth });
    expect(res.status).toBe(200);
    expect(res.json.status).toBe('canceled');
    expect(await sys.service.redis.zscore(sys.service.keys.dueOf(`poll:${p.id}`).key, `poll:${p.id}`)).toBeNull();
    // Approving at the bank now changes nothing: once the worker has finished what it had in hand,
    // no work of the payment is left that could ask the bank for its token or pay it.
    const pending = (await sys.bank.pending('user')).find((x) => x.bindingMessage === p.binding_message);
    if (pending) await sys.bank.approve(pending.id);
    await sys.idle();
    expect((await sys.workOf(p.id)).filter((m) => !m.startsWith('hook:'))).toEqual([]);
    expect((await api(sys.url, 'GET', `/payments/${p.id}`, { headers: auth })).json.status).toBe('canceled');
    expect((await sys.bank.transfers()).filter((t) => t.idempotencyKey === p.id)).toHaveLength(0);
  });

  test('when a payment has succeeded, then cancel answers 409 payment_not_cancelable', async () => {
    const { json: p } = await api(sys.url, 'POST', '/checkout', { body: CART });
    const pending = await waitFor(async () =>
      (await sys.bank.pending('user')).find((x) => x.bindingMessage === p.binding_message),
    );
    await sys.bank.approve(pending.id);
    await waitForStatus(sys.url, p.id, p.client_secret, ['succeeded']);
    const res = await api(sys.url, 'POST', `/payments/${p.id}/cancel`, {
      headers: { authorization: `Bearer ${p.client_secret}` },
    });
    expect(res.status).toBe(409);
    expect(res.json.code).toBe('payment_not_cancelable');
  });

  test('when the list entry fails beside the new payment, then the checkout still answers as the payment stands, and an alarm is counted', async () => {
    // A wrong type on the list's directory: every list entry fails (WRONGTYPE), as after a SCRIPT
    // FLUSH it could. The phone is asked before the payment is stored, so once the payment exists a
    // 5xx would hide a payment that can move money.
    const { redis, keys, metrics } = sys.service;
    const directory = keys.paymentListIndex.directory;
    const saved = (await redis.dumpBuffer(directory)) as Buffer | null; // null: no entry yet
    await redis.del(directory);
    await redis.set(directory, 'not a sorted set');
    let res;
    try {
      res = await api(sys.url, 'POST', '/checkout', { body: CART });
    } finally {
      await redis.del(directory);
      if (saved) await redis.restore(directory, 0, saved);
    }
    const alarms = await metrics.registry.getSingleMetricAsString('operator_alarms_total');
    if (redis.isCluster) {
      // In a cluster the entry goes first, on its own: it failed before any payment existed.
      expect(res.status).toBeGreaterThanOrEqual(500);
      expect(alarms).not.toMatch(/alarm="payment_not_listed"/);
      return;
    }
    expect(res.status).toBe(202);
    const stored = await api(sys.url, 'GET', `/payments/${res.json.id}`, {
      headers: { authorization: `Bearer ${res.json.client_secret}` },
    });
    expect(stored.json).toMatchObject({ id: res.json.id, status: 'pending_authorization' });
    expect(alarms).toMatch(/alarm="payment_not_listed"\} 1/);
    expect(sys.logs.join('\n')).not.toContain(res.json.client_secret);
    await api(sys.url, 'POST', `/payments/${res.json.id}/cancel`, {
      headers: { authorization: `Bearer ${res.json.client_secret}` },
    });
  });

  test('when nobody answers on the phone before expiry, then the payment fails as expired', async () => {
    const { json: p } = await api(sys.url, 'POST', '/checkout', { body: CART });
    expect(Date.parse(p.expires_at) - Date.parse(p.created_at)).toBeLessThanOrEqual(3000);
    const done = await waitForStatus(sys.url, p.id, p.client_secret, ['failed', 'succeeded'], 10_000);
    expect(done).toMatchObject({ status: 'failed', failure_code: 'expired' });
    // Never long before expiry: the bank counts its whole-second expires_in from its own receipt, so
    // its expired_token may come up to a second before our expires_at (counted from our receipt).
    expect(Date.parse(done.updated_at)).toBeGreaterThanOrEqual(Date.parse(p.expires_at) - 1100);
    expect(await sys.service.redis.zscore(sys.service.keys.dueOf(`poll:${p.id}`).key, `poll:${p.id}`)).toBeNull();
  });
});
