import { api } from '../support/api.js';
import { ONE_TEA, useConformanceHarness } from '../support/service-against-op.js';

/**
 * Issue 11.1 and 11.2: only the shop says what a payment is for, the client secret travels in the
 * query only where EventSource needs it, and `Bearer` is matched case-insensitively everywhere.
 * Against the scripted OP, which records every request it receives.
 */
const h = useConformanceHarness(
  {},
  { RATE_LIMIT_CHECKOUT_PER_MINUTE: '1000', RATE_LIMIT_LOGIN_HINT_PER_MINUTE: '1000' },
);

const shopKey = () => h.svc.env.SHOP_API_KEY!;
const checkout = (body: unknown, headers: Record<string, string> = {}) =>
  api(h.svc.url, 'POST', '/checkout', { body, headers });
const idempotencyKeys = async () => (await h.svc.keys()).filter((k) => k.includes(':idem:'));
/** Every rate-limit counter with its value: a refused request must leave them all as they were. */
async function limitState(): Promise<Record<string, string | null>> {
  const keys = (await h.svc.keys()).filter((k) => k.includes('rl:'));
  return Object.fromEntries(await Promise.all(keys.map(async (k) => [k, await h.svc.service.redis.get(k)])));
}

describe('who may say what a payment is for', () => {
  test.each([
    ['metadata', { metadata: { order_id: 'A-900' } }, ['$.metadata']],
    ['callback_url', { callback_url: 'https://shop.example/hooks' }, ['$.callback_url']],
    [
      'both',
      { metadata: { order_id: 'A-900' }, callback_url: 'https://shop.example/hooks' },
      ['$.metadata', '$.callback_url'],
    ],
  ])(
    'when an anonymous checkout carries %s, then 401 shop_key_required, nothing reaches the bank and nothing is stored',
    async (_name, extra, paths) => {
      const keysBefore = await h.svc.keys();
      const res = await checkout({ ...ONE_TEA, ...extra }, { 'idempotency-key': `anon-${Date.now()}` });
      expect(res.status).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="shop"');
      expect(res.json).toMatchObject({ code: 'shop_key_required', status: 401 });
      expect(res.json.errors.map((e: { path: string }) => e.path)).toEqual(paths);
      expect(h.op.requestsTo('backchannel')).toHaveLength(0);
      expect(await h.svc.keys()).toEqual(keysBefore);
    },
  );

  test('when the key is not the shop key, then it counts as anonymous: metadata refused with invalid_token, a plain cart accepted', async () => {
    const wrong = { authorization: `Bearer ${shopKey()}x` };
    const refused = await checkout({ ...ONE_TEA, metadata: { order_id: 'A-900' } }, wrong);
    expect(refused.status).toBe(401);
    expect(refused.json.code).toBe('shop_key_required');
    expect(refused.headers['www-authenticate']).toBe('Bearer realm="shop", error="invalid_token"');
    const basic = await checkout({ ...ONE_TEA, metadata: { a: 'b' } }, { authorization: `Basic ${shopKey()}` });
    expect(basic.status).toBe(401);
    expect(h.op.requestsTo('backchannel')).toHaveLength(0);

    const plain = await checkout(ONE_TEA, wrong);
    expect(plain.status).toBe(202);
    expect(plain.json.metadata).toEqual({});
    expect(h.op.requestsTo('backchannel')).toHaveLength(1);
    await api(h.svc.url, 'POST', `/payments/${plain.json.id}/cancel`, {
      headers: { authorization: `Bearer ${plain.json.client_secret}` },
    });
  });

  test('when the shop key comes with metadata (scheme in any case), then the payment carries it', async () => {
    const res = await checkout(
      { ...ONE_TEA, metadata: { order_id: 'A-10042' } },
      { authorization: `bEaReR ${shopKey()}` },
    );
    expect(res.status).toBe(202);
    expect(res.json.metadata).toEqual({ order_id: 'A-10042' });
    await api(h.svc.url, 'POST', `/payments/${res.json.id}/cancel`, {
      headers: { authorization: `BEARER ${shopKey()}` },
    });
  });

  test('when an anonymous checkout is refused, then no limit is used', async () => {
    const accepted = await h.svc.start();
    const before = await limitState();
    expect(Object.keys(before).length).toBeGreaterThan(0);
    await checkout({ ...ONE_TEA, metadata: { order_id: 'A-900' } });
    expect(await limitState()).toEqual(before);
    expect((await h.svc.status(accepted)).status).toBe('pending_authorization');
  });
});

describe('refusals before the bank store no idempotency record', () => {
  test('when the sku is unknown, then 422 and nothing is stored; the same key with a fixed cart then succeeds', async () => {
    const key = `fix-${Date.now()}`;
    const bad = await checkout({ ...ONE_TEA, items: [{ sku: 'tea-99', quantity: 1 }] }, { 'idempotency-key': key });
    expect(bad.status).toBe(422);
    expect(bad.json.code).toBe('unknown_sku');
    expect(await idempotencyKeys()).toEqual([]);
    expect(h.op.requestsTo('backchannel')).toHaveLength(0);

    const fixed = await checkout(ONE_TEA, { 'idempotency-key': key });
    expect(fixed.status).toBe(202);
    expect(fixed.headers['idempotent-replayed']).toBeUndefined();
    const replay = await checkout(ONE_TEA, { 'idempotency-key': key });
    expect(replay.json.id).toBe(fixed.json.id);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(h.op.requestsTo('backchannel')).toHaveLength(1);
    await api(h.svc.url, 'POST', `/payments/${fixed.json.id}/cancel`, {
      headers: { authorization: `Bearer ${fixed.json.client_secret}` },
    });
  });
});

describe('the Bearer scheme in any case', () => {
  test.each(['BEARER', 'bearer', 'Bearer  '])(
    'when GET /payments/:id uses the scheme %p, then it answers 200',
    async (scheme) => {
      const p = await h.svc.start();
      const res = await api(h.svc.url, 'GET', `/payments/${p.id}`, {
        headers: { authorization: `${scheme} ${p.secret}` },
      });
      expect(res.status).toBe(200);
      expect(res.json.id).toBe(p.id);
    },
  );
});
