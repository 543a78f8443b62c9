import { BASE32, randomBase32 } from '../crypto/random-ids.js';

/**
 * Payment ids, and the scheduler shard each one is born in (issue 12.1). A payment's keys and its
 * work items live on its shard for good (on Redis Cluster: one hash slot), so the shard must be
 * readable from the id alone, whatever SCHEDULER_SHARDS says later. It is folded into the first two
 * characters so that ids still look uniformly random: chars 0–1 = shard + 389 × chars 2–3 + 733
 * (mod 1024; 389 is odd, so for given chars 2–3 every shard gives other chars 0–1).
 */

const ID = /^pay_[a-z2-7]{20}$/;
/** Two base32 characters: shards 0–1023. */
export const MAX_SHARDS = 1024;

function decode2(s: string, at: number): number {
  return BASE32.indexOf(s.charAt(at)) * 32 + BASE32.indexOf(s.charAt(at + 1));
}

/** `pay_` + 20 base32 chars (90 random bits and the shard): unguessable, as it is also the bank's idempotency key. */
export function newPaymentId(shard: number): string {
  if (!Number.isInteger(shard) || shard < 0 || shard >= MAX_SHARDS) throw new RangeError(`shard ${shard}`);
  const rest = randomBase32(18);
  const folded = (shard + 389 * decode2(rest, 0) + 733) % MAX_SHARDS;
  return `pay_${BASE32.charAt(folded >> 5)}${BASE32.charAt(folded & 31)}${rest}`;
}

/** The shard a payment was born in; 0 for anything that is not a payment id. */
export function shardOfPaymentId(id: string): number {
  if (!ID.test(id)) return 0;
  const folded = decode2(id, 4) - 389 * decode2(id, 6) - 733;
  return ((folded % MAX_SHARDS) + MAX_SHARDS) % MAX_SHARDS;
}
