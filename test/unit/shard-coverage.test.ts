import { coveredShards, WORKERS_PER_SHARD } from '../../src/jobs/shard-coverage.js';

const shards = Array.from({ length: 64 }, (_, k) => k);
const ids = (n: number) => Array.from({ length: n }, (_, i) => `w${String(i).padStart(3, '0')}`).sort();

/** shard → the workers covering it. */
function coverage(workers: string[]): Map<number, string[]> {
  const by = new Map<number, string[]>(shards.map((s) => [s, []]));
  for (const w of workers) for (const s of coveredShards(shards, workers, w)) by.get(s)?.push(w);
  return by;
}

describe('shard coverage (rendezvous hashing over the live workers)', () => {
  test('every shard is covered by exactly R workers, spread over all of them', () => {
    const workers = ids(10);
    const by = coverage(workers);
    for (const covering of by.values()) expect(covering).toHaveLength(WORKERS_PER_SHARD);
    for (const w of workers) expect(coveredShards(shards, workers, w).length).toBeGreaterThan(0);
  });

  test('with R workers or fewer, each covers every shard; a worker not in the list covers every shard', () => {
    for (const w of ids(2)) expect(coveredShards(shards, ids(2), w)).toEqual(shards);
    expect(coveredShards(shards, ids(10), 'not-registered-yet')).toEqual(shards);
  });

  test('when one worker leaves, only the shards it covered get another worker', () => {
    const before = coverage(ids(10));
    const leaving = 'w004';
    const after = coverage(ids(10).filter((w) => w !== leaving));
    for (const s of shards) {
      const was = before.get(s) ?? [];
      const now = after.get(s) ?? [];
      if (!was.includes(leaving)) expect(now).toEqual(was);
      else expect(now.filter((w) => was.includes(w))).toHaveLength(WORKERS_PER_SHARD - 1);
    }
  });
});

test('with more workers than shards, each shard gets workers ÷ shards of them (one shard: all of them)', () => {
  for (const w of ids(5)) expect(coveredShards([0], ids(5), w)).toEqual([0]);
  const few = [0, 1, 2];
  const workers = ids(9);
  for (const s of few) expect(workers.filter((w) => coveredShards(few, workers, w).includes(s))).toHaveLength(3);
});
