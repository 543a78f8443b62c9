import { randomInt } from 'node:crypto';
import type { PaymentRecord } from '../../src/payments/payment.js';
import { SCAN_BUDGET } from '../../src/payments/list-payments.js';
import { createPaymentListIndex } from '../../src/store/payment-list-index.js';
import { api } from '../support/api.js';
import { startTestService, type SandboxService } from '../support/service.js';
import { newTestPayment } from '../support/payments.js';
import { paymentMover } from '../support/webhook-receiver.js';

/**
 * GET /payments (issue 15): the shop's list, newest first, with Stripe-style cursors, on real Redis.
 * Payments are written through the state machine (the API runs without a worker, so nothing moves
 * them on), with created_at chosen by the test: many share a millisecond, some are older than the
 * page a reader is on, as payments from API processes with skewed clocks would be.
 */
describe('GET /payments', () => {
  let sys: SandboxService;
  let mover: ReturnType<typeof paymentMover>;
  // Within the 24 h retention (older entries are trimmed on write), on whole seconds for created[gte].
  const base = Math.floor((Date.now() - 20 * 3_600_000) / 1000) * 1000;

  beforeAll(async () => {
    sys = await startTestService({ role: 'api', env: { PAYMENT_RETENTION_HOURS: '24' } });
    mover = paymentMover(sys.service);
  });
  afterAll(async () => {
    await sys.close();
  });

  function record(createdAt: number, metadata: Record<string, string> = {}): PaymentRecord {
    return newTestPayment({ createdAt, updatedAt: createdAt, expiresAt: createdAt + 60_000, metadata }).record;
  }
  const create = (r: PaymentRecord) => mover.create(r);

  const asShop = () => ({ authorization: `Bearer ${sys.env.SHOP_API_KEY}` });
  const list = (query: string) => api(sys.url, 'GET', `/payments${query}`, { headers: asShop() });
  const order = (a: { created_at: string; id: string }, b: { created_at: string; id: string }) =>
    b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id);

  /** Fresh payments in their own time window, so each test lists only its own (created[gte|lt]). */
  let window = 0;
  function nextWindow(): { from: number; to: number; query: string } {
    window += 1;
    const from = base + window * 3_600_000;
    const to = from + 3_600_000;
    return { from, to, query: `created[gte]=${from / 1000}&created[lt]=${to / 1000}` };
  }

  test('when the caller is anonymous, holds a client secret or a wrong key, then 401 with WWW-Authenticate', async () => {
    const secretHolder = await api(sys.url, 'GET', '/payments', {
      headers: { authorization: 'Bearer pay_aaaaaaaaaaaaaaaaaaaa_secret_x' },
    });
    for (const res of [
      await api(sys.url, 'GET', '/payments'),
      await api(sys.url, 'GET', '/payments', { headers: { authorization: `Bearer ${sys.env.SHOP_API_KEY}x` } }),
      await api(sys.url, 'GET', `/payments?client_secret=${sys.env.SHOP_API_KEY}`),
      secretHolder,
    ]) {
      expect(res.status).toBe(401);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
      expect(res.json).toMatchObject({ code: 'unauthorized', status: 401 });
    }
  });

  test.each([
    ['limit=0', '$.limit'],
    ['limit=101', '$.limit'],
    ['limit=ten', '$.limit'],
    ['limit=1&limit=2', '$.limit'],
    ['status=paid', '$.status'],
    ['starting_after=pay_1', '$.starting_after'],
    ['created[gte]=yesterday', '$.created.gte'],
    ['created[gt]=1', '$.created'],
    ['metadata[a][b]=1', '$'],
    ['metadata[bad%20key]=1', '$.metadata.bad key'],
    ['colour=red', '$'],
    ['starting_after=pay_aaaaaaaaaaaaaaaaaaaa&ending_before=pay_aaaaaaaaaaaaaaaaaaab', '$.ending_before'],
    ['starting_after=pay_aaaaaaaaaaaaaaaaaaaa', '$.starting_after'],
  ])('when the query is %s, then 400 validation_failed naming %s', async (query, path) => {
    const res = await list(`?${query}`);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.json.code).toBe('validation_failed');
    expect(res.json.errors.map((e: { path: string }) => e.path)).toContain(path);
  });

  test('when payments share milliseconds, then pages are newest first by (created_at, id), forwards and back', async () => {
    const w = nextWindow();
    const made = await Promise.all(Array.from({ length: 45 }, (_, i) => create(record(w.from + Math.floor(i / 9)))));
    const forward: any[] = [];
    let res = await list(`?limit=10&${w.query}`);
    for (;;) {
      expect(res.status).toBe(200);
      expect(res.json.object).toBe('list');
      forward.push(...res.json.data);
      if (!res.json.has_more) break;
      expect(res.json.next_cursor).toBe(res.json.data.at(-1).id);
      res = await list(`?limit=10&${w.query}&starting_after=${res.json.next_cursor}`);
    }
    expect(res.json.data).toHaveLength(5);
    expect(res.json.next_cursor).toBeNull();
    expect(forward.map((p) => p.id)).toEqual(
      made
        .map((r) => ({ id: r.id, created_at: new Date(r.createdAt).toISOString() }))
        .sort(order)
        .map((p) => p.id),
    );
    expect(JSON.stringify(forward)).not.toMatch(/arid|secret|auth_req_id/);

    // Backwards from the oldest: every page is still newest first and joins up with the last.
    const backward: any[] = [];
    let cursor = forward.at(-1).id as string;
    backward.unshift(forward.at(-1));
    for (;;) {
      const page = await list(`?limit=10&${w.query}&ending_before=${cursor}`);
      backward.unshift(...page.json.data);
      if (!page.json.has_more) break;
      expect(page.json.next_cursor).toBe(page.json.data[0].id);
      cursor = page.json.next_cursor;
    }
    expect(backward.map((p) => p.id)).toEqual(forward.map((p) => p.id));
  });

  test('when hundreds of payments are created while a shop pages, then none repeats and none present at the start is skipped', async () => {
    const w = nextWindow();
    // Present before paging starts, 4 to a millisecond.
    const before = await Promise.all(Array.from({ length: 200 }, (_, i) => create(record(w.from + 60_000 + (i >> 2)))));
    // Created during paging: newer ones (in front of the reader) and older ones anywhere behind it.
    let creating = true;
    const during: PaymentRecord[] = [];
    const writers = Array.from({ length: 4 }, async () => {
      while (creating && during.length < 300) {
        const createdAt = randomInt(2) === 0 ? w.from + 120_000 + during.length : w.from + randomInt(110_000);
        during.push(await create(record(createdAt)));
      }
    });

    const seen: any[] = [];
    let cursor: string | null = null;
    for (;;) {
      const limit = 1 + randomInt(13);
      const res = await list(`?limit=${limit}&${w.query}${cursor ? `&starting_after=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.json.data.length).toBeLessThanOrEqual(limit);
      seen.push(...res.json.data);
      if (!res.json.has_more) break;
      cursor = res.json.next_cursor;
    }
    creating = false;
    await Promise.all(writers);

    const ids = seen.map((p) => p.id as string);
    expect(new Set(ids).size).toBe(ids.length); // no item twice
    const seenIds = new Set(ids);
    expect(before.filter((r) => !seenIds.has(r.id))).toEqual([]); // none skipped
    expect([...seen].sort(order)).toEqual(seen); // newest first throughout
    expect(during.length).toBeGreaterThan(0);
    // Everything now listed: before + during, exactly once.
    const all: string[] = [];
    for (let c: string | null = null, more = true; more;) {
      const res = await list(`?limit=100&${w.query}${c ? `&starting_after=${c}` : ''}`);
      all.push(...res.json.data.map((p: { id: string }) => p.id));
      more = res.json.has_more;
      c = res.json.next_cursor;
    }
    expect(all.sort()).toEqual([...before, ...during].map((r) => r.id).sort());
  }, 60_000);

  test('when filtered by status, then the current status counts; by created and metadata, then only those match', async () => {
    const w = nextWindow();
    const made = await Promise.all(
      Array.from({ length: 30 }, (_, i) => create(record(w.from + i * 1000, { order_id: `ord_${i % 3}` }))),
    );
    for (const r of made.slice(0, 5)) await mover.move(r.id, 'canceled');

    const canceled = await list(`?${w.query}&status=canceled&limit=100`);
    expect(canceled.json.data.map((p: { id: string }) => p.id).sort()).toEqual(
      made
        .slice(0, 5)
        .map((r) => r.id)
        .sort(),
    );
    const pending = await list(`?${w.query}&status=pending_authorization&limit=100`);
    expect(pending.json.data).toHaveLength(25);

    // created[gte] inclusive, created[lt] exclusive; unix seconds or RFC 3339.
    const from = new Date(w.from + 10_000).toISOString();
    const range = await list(`?created[gte]=${encodeURIComponent(from)}&created[lt]=${(w.from + 20_000) / 1000}`);
    expect(range.json.data.map((p: { id: string }) => p.id)).toEqual(
      made
        .slice(10, 20)
        .map((r) => r.id)
        .reverse(),
    );

    const byOrder = await list(`?${w.query}&metadata[order_id]=ord_1&status=pending_authorization&limit=100`);
    expect(byOrder.json.data.map((p: { id: string }) => p.id)).toEqual(
      made
        .filter((r, i) => i % 3 === 1 && i >= 5)
        .map((r) => r.id)
        .reverse(),
    );
    const none = await list(`?${w.query}&metadata[order_id]=ord_9`);
    expect(none.json).toEqual({ object: 'list', data: [], has_more: false, next_cursor: null });
  });

  test('when a filter matches little, then a page stops after the scan budget and next_cursor goes on', async () => {
    const w = nextWindow();
    const count = SCAN_BUDGET + 150;
    const made: PaymentRecord[] = [];
    for (let i = 0; i < count; i += 100) {
      const batch = Math.min(100, count - i);
      made.push(
        ...(await Promise.all(
          Array.from({ length: batch }, (_, j) =>
            create(record(w.from + i + j, i + j === 3 ? { order_id: 'rare' } : {})),
          ),
        )),
      );
    }
    const first = await list(`?${w.query}&metadata[order_id]=rare`);
    expect(first.json).toMatchObject({ data: [], has_more: true });
    expect(first.json.next_cursor).toBe(made[count - SCAN_BUDGET]?.id);
    const second = await list(`?${w.query}&metadata[order_id]=rare&starting_after=${first.json.next_cursor}`);
    expect(second.json.data.map((p: { id: string }) => p.id)).toEqual([made[3]?.id]);
    expect(second.json.has_more).toBe(false);
  });

  test('when payments from the previous version are in its one sorted set, then the API start moves them and lists them in order', async () => {
    const w = nextWindow();
    const { redis, keys } = sys.service;
    const current = await Promise.all(Array.from({ length: 150 }, (_, i) => create(record(w.from + (i % 7)))));
    // As the previous version left them: hashes with its field names, entries in its sorted set only.
    const legacy = Array.from({ length: 300 }, (_, i) => record(w.from + (i % 11)));
    for (const r of legacy) {
      await redis.hset(keys.payment(r.id), {
        id: r.id,
        status: 'pending_authorization',
        amount: String(r.amount),
        currency: r.currency,
        items: JSON.stringify(r.items),
        binding: r.bindingMessage,
        expires_at: String(r.expiresAt),
        created_at: String(r.createdAt),
        updated_at: String(r.updatedAt),
        metadata: '{}',
        secret: r.secretHash,
        arid: 'arid-legacy',
        interval: '5000',
        attempts: '0',
        e1: `abcdefghijklmnopqrstuvwx pending_authorization - ${r.createdAt.toString(36)}`,
      });
      await redis.zadd(keys.paymentList, r.createdAt, r.id);
    }
    const index = createPaymentListIndex({ redis, keys, retentionSeconds: 24 * 3600 });
    expect(await index.migrateLegacyIndex(Date.now())).toBeGreaterThanOrEqual(legacy.length);
    expect(await redis.exists(keys.paymentList)).toBe(0);

    const expected = [...current, ...legacy]
      .map((r) => ({ id: r.id, created_at: new Date(r.createdAt).toISOString() }))
      .sort(order)
      .map((p) => p.id);
    const forward: string[] = [];
    for (let c: string | null = null, more = true; more;) {
      const res = await list(`?limit=37&${w.query}${c ? `&starting_after=${c}` : ''}`);
      forward.push(...res.json.data.map((p: { id: string }) => p.id));
      more = res.json.has_more;
      c = res.json.next_cursor;
    }
    expect(forward).toEqual(expected);
    // A legacy payment as a cursor, towards newer ones.
    const at = expected.indexOf(legacy[5]!.id);
    const newer = await list(`?limit=3&${w.query}&ending_before=${legacy[5]!.id}`);
    expect(newer.json.data.map((p: { id: string }) => p.id)).toEqual(expected.slice(Math.max(0, at - 3), at));
    const shown = await api(sys.url, 'GET', `/payments/${legacy[0]!.id}`, { headers: asShop() });
    expect(shown.json).toMatchObject({ amount: legacy[0]!.amount, items: [{ sku: 'tea-01', quantity: 1 }] });
  });

  test('the index is trimmed to the retention on write, in compact leaves of under 50 bytes per payment', async () => {
    const { redis, keys } = sys.service;
    const { directory, leafPrefix } = keys.paymentListIndex;
    const old = await create(record(Date.now() - 25 * 3_600_000));
    // The write of the next payment trims everything created before the retention window.
    await create(record(Date.now()));
    const leaves = (await redis.zrange(directory, 0, -1)).map((m) => `${leafPrefix}${m.split(' ')[1] ?? ''}`);
    let entries = 0;
    let bytes = Number(await redis.call('MEMORY', 'USAGE', directory, 'SAMPLES', '0'));
    for (const leaf of leaves) {
      expect(await redis.zscore(leaf, old.id)).toBeNull();
      const n = await redis.zcard(leaf);
      if (n === 0) continue;
      entries += n;
      expect(n).toBeLessThan(128);
      expect(await redis.object('ENCODING', leaf)).toBe('listpack');
      bytes += Number(await redis.call('MEMORY', 'USAGE', leaf, 'SAMPLES', '0'));
    }
    expect(entries).toBeGreaterThan(1000);
    const perPayment = bytes / entries;
    const line = `payment list index: ${entries} entries in ${leaves.length} leaves, ${bytes} bytes, ${perPayment.toFixed(1)} B each\n`;
    process.stdout.write(line);
    expect(perPayment).toBeLessThan(50);
  });
});
