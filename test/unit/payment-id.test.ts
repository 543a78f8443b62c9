import { MAX_SHARDS, newPaymentId, shardOfPaymentId } from '../../src/payments/payment-id.js';
import { createKeys } from '../../src/store/keys.js';

describe('payment ids and their scheduler shard', () => {
  test('when an id is made for a shard, then the shard is read back from the id alone, for every shard', () => {
    for (let shard = 0; shard < MAX_SHARDS; shard++) {
      const id = newPaymentId(shard);
      expect(id).toMatch(/^pay_[a-z2-7]{20}$/);
      expect(shardOfPaymentId(id)).toBe(shard);
    }
  });

  test('when ids are made for one shard, then their first characters still vary (the shard is not visible)', () => {
    const ids = Array.from({ length: 200 }, () => newPaymentId(0));
    expect(new Set(ids.map((id) => id.slice(4, 6))).size).toBeGreaterThan(100);
    expect(ids.filter((id) => id.slice(4, 6) === id.slice(6, 8)).length).toBeLessThan(5);
  });

  test('when a shard is out of range, then no id is made', () => {
    expect(() => newPaymentId(MAX_SHARDS)).toThrow(RangeError);
    expect(() => newPaymentId(-1)).toThrow(RangeError);
  });

  test('when keys are built, then a payment and its work items share the hash tag of its shard', () => {
    const keys = createKeys('p:');
    const id = newPaymentId(7);
    const tag = (key: string) => /\{[^}]*\}/.exec(key)?.[0];
    expect(tag(keys.payment(id))).toBe('{s7}');
    expect(tag(keys.paymentDeliveries(id))).toBe('{s7}');
    for (const member of [`poll:${id}`, `submit:${id}`, `hook:${id}:3:g`]) {
      expect(keys.shardOf(member)).toBe(7);
      expect(tag(keys.dueOf(member).key)).toBe('{s7}');
      expect(tag(keys.scheduleOf(member).leases)).toBe('{s7}');
    }
    expect(keys.payment(id).startsWith('p:')).toBe(true);
  });
});
