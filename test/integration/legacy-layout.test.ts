import { randomBytes } from 'node:crypto';
import { sha256 } from '../../src/crypto/hashing.js';
import { decodeRecord } from '../../src/store/payment-hash.js';
import { api } from '../support/api.js';
import { useConformanceHarness, type StartedPayment } from '../support/service-against-op.js';

/**
 * Payments an earlier release wrote (before issue 12.4 and the due buckets) are still served: the
 * hash with long field names (statuses by name, item objects, an `id` field, the full SHA-256 of the
 * client secret, event entries with their own ids) and the poll in the shard's single `{sK}due` set.
 * Rewritten here by hand, as that release left them, from a payment the service just created.
 */
describe('a payment in the previous layout', () => {
  // Interval 20 s (of 120): no poll is due (or leased) while the test rewrites the payment.
  const h = useConformanceHarness({ interval: 20 }, { CIBA_REQUESTED_EXPIRY: '120' });

  /** The payment's hash and due entry as the previous release wrote them; returns the poll's due time. */
  async function rewriteAsLegacy(p: StartedPayment): Promise<number> {
    const { redis, keys } = h.svc.service;
    const key = keys.payment(p.id);
    const r = decodeRecord(await redis.hgetall(key), p.id);
    if (!r) throw new Error(`no payment ${p.id}`);
    const legacy: Record<string, string> = {
      id: r.id,
      status: r.status,
      amount: String(r.amount),
      currency: r.currency,
      items: JSON.stringify(r.items),
      binding: r.bindingMessage,
      expires_at: String(r.expiresAt),
      created_at: String(r.createdAt),
      updated_at: String(r.updatedAt),
      metadata: JSON.stringify(r.metadata),
      secret: sha256(p.secret),
      arid: r.authReqId ?? '',
      interval: String(r.intervalMs),
      attempts: String(r.attempts),
      e1: `${randomBytes(8)
        .toString('hex')
        .replace(/[^a-z2-7]/g, 'a')} pending_authorization - ${r.createdAt.toString(36)}`,
    };
    const member = `poll:${p.id}`;
    const bucket = keys.dueOf(member);
    const shard = keys.scheduleOf(member);
    const at = Number(await redis.zscore(bucket.key, member));
    const ttl = await redis.pttl(key);
    const tx = redis.multi().del(key).hset(key, legacy);
    if (ttl > 0) tx.pexpire(key, ttl);
    // Out of its bucket (the directory entry of an emptied bucket goes too), into the single due set.
    await tx.zrem(bucket.key, member).zadd(shard.legacyDue, at, member).exec();
    if ((await redis.zcard(bucket.key)) === 0) await redis.zrem(shard.dueDir, String(bucket.bucket));
    expect(await h.svc.workOf(p.id)).toEqual([member]);
    return at;
  }

  const legacyEntry = (p: StartedPayment) =>
    h.svc.service.redis.zscore(h.svc.service.keys.scheduleOf(p.id).legacyDue, `poll:${p.id}`);

  test('when it is canceled through the API, then it ends canceled and its due entry is gone', async () => {
    const p = await h.svc.start();
    await rewriteAsLegacy(p);
    expect(await h.svc.status(p)).toMatchObject({ status: 'pending_authorization' }); // the old check value opens it

    const res = await api(h.svc.url, 'POST', `/payments/${p.id}/cancel`, {
      headers: { authorization: `Bearer ${p.secret}` },
    });

    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id: p.id, status: 'canceled' });
    expect(await h.svc.status(p)).toMatchObject({ status: 'canceled' });
    expect(await legacyEntry(p)).toBeNull();
    expect(await h.svc.workOf(p.id)).toEqual([]);
    expect(p.polls()).toHaveLength(0);
  });

  test('when it is approved, then its poll is claimed from the single due set and it succeeds', async () => {
    const p = await h.svc.start();
    const at = await rewriteAsLegacy(p);
    h.op.approve(p.authReqId);

    h.advanceTo(at);
    await h.svc.drive(p, async () => (await h.svc.status(p)).status === 'succeeded', 15_000);

    expect(await h.svc.status(p)).toMatchObject({ status: 'succeeded', failure_code: null });
    expect(p.polls()).toHaveLength(1);
    expect(p.paymentCalls()).toHaveLength(1);
    expect(await legacyEntry(p)).toBeNull();
    await h.svc.idle();
    expect(await h.svc.workOf(p.id)).toEqual([]);
    // Written since in the new layout: the status as its letter, the long status field replaced.
    expect(await h.svc.service.redis.hget(h.svc.service.keys.payment(p.id), 'status')).toBe('s');
  });
});
