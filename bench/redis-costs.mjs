// Two Redis costs the sizing needs that the pending-capacity runs do not separate (issue 12.5):
//  - a pub/sub message: classic PUBLISH is sent over the cluster bus to every node (primaries and
//    replicas), SPUBLISH only to the shard that owns the channel's slot. M messages each way, one
//    subscriber; CPU of all nodes summed (INFO cpu deltas) per 1,000 messages;
//  - a claim call on a shard with nothing due (what every worker sends every shard on every look):
//    CPU of the primary holding the shard per call.
// Best on a cluster of its own (nothing else moves its CPU figures):
//
//   REDIS_CLUSTER_BASE_PORT=7341 REDIS_CLUSTER_DIR=/tmp/bench-costs-cluster scripts/redis-cluster.sh
//   node bench/redis-costs.mjs --nodes=127.0.0.1:7341 [--messages=10000] [--claims=50000]
//   node bench/redis-costs.mjs --nodes=127.0.0.1:7341 --rate=5000 [--seconds=10]
//
// With --rate: a steady load instead (issue 12.5), as ~1,000 checkouts/s make it (~5 status changes and
// wake-ups each): `rate` messages/s for `seconds`, spread over the 16 shards' channels, one subscriber
// following them all; each node's CPU share, classic PUBLISH (one channel) against SPUBLISH (the
// shard's own channel), back to back, twice.
//   REDIS_CLUSTER_BASE_PORT=7341 scripts/redis-cluster.sh stop
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { createRedisCluster } from '../dist/store/redis.js';

const option = (name) =>
  process.argv
    .slice(2)
    .find((a) => a.startsWith(`--${name}=`))
    ?.split('=')[1];
const MESSAGES = Number(option('messages') ?? 10_000);
const CLAIMS = Number(option('claims') ?? 50_000);
const SEEDS = (option('nodes') ?? Array.from({ length: 6 }, (_, i) => `127.0.0.1:${7101 + i}`).join(',')).split(',');
const seeds = SEEDS.map((s) => ({ host: s.split(':')[0], port: Number(s.split(':')[1]) }));

const probe = new Redis(seeds[0]);
const layout = (await probe.cluster('NODES'))
  .trim()
  .split('\n')
  .map((line) => line.split(' '));
probe.disconnect();
const connect = (f) => new Redis({ host: f[1].split(':')[0], port: Number(f[1].split('@')[0].split(':')[1]) });
const nodes = layout.map(connect);

async function nodeCpu(n) {
  const info = await n.info('cpu');
  const get = (k) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return get('used_cpu_sys') + get('used_cpu_user');
}
async function cpu() {
  return (await Promise.all(nodes.map(nodeCpu))).reduce((a, b) => a + b, 0);
}

const channel = `bench:pubsub:${randomBytes(3).toString('hex')}:{s0}changes`;
async function measure(kind) {
  const sub = new Cluster(seeds, { shardedSubscribers: kind === 'SPUBLISH' });
  let received = 0;
  sub.on(kind === 'SPUBLISH' ? 'smessage' : 'message', () => received++);
  if (kind === 'SPUBLISH') await sub.ssubscribe(channel);
  else await sub.subscribe(channel);
  const pub = new Cluster(seeds, { enableAutoPipelining: true });
  await pub.ping();
  const c0 = await cpu();
  const t0 = Date.now();
  for (let i = 0; i < MESSAGES; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, MESSAGES - i) }, (_, j) =>
        kind === 'SPUBLISH' ? pub.spublish(channel, `pay_${i + j}`) : pub.publish(channel, `pay_${i + j}`),
      ),
    );
  }
  while (received < MESSAGES && Date.now() - t0 < 30_000) await sleep(20);
  await sleep(200); // the bus fan-out finishes on the other nodes
  const cpuS = (await cpu()) - c0;
  pub.disconnect();
  sub.disconnect();
  return { kind, messages: MESSAGES, received, node_cpu_s_per_1k: Math.round((cpuS / MESSAGES) * 1e6) / 1e3 };
}

/** Claim calls on an empty shard, pipelined; CPU of the primary that holds it, per call. */
async function measureClaims() {
  const client = createRedisCluster(seeds, { enableAutoPipelining: true });
  const tag = `bench:costs:${randomBytes(3).toString('hex')}:{s0}`;
  const slot = await client.cluster('KEYSLOT', tag);
  const owner = layout.find(
    (f) =>
      f[2].includes('master') &&
      f.slice(8).some((r) => {
        const [a, b] = r.split('-').map(Number);
        return slot >= a && slot <= (b ?? a);
      }),
  );
  const primary = connect(owner);
  const c0 = await nodeCpu(primary);
  const p0 = process.cpuUsage();
  for (let i = 0; i < CLAIMS; i += 1000) {
    const now = Date.now();
    await Promise.all(
      Array.from({ length: 1000 }, () =>
        client.claim(
          `${tag}due:dir`,
          `${tag}leases`,
          `${tag}due`,
          `${tag}takenover`,
          now,
          now + 30_000,
          16,
          '',
          `${tag}pay:`,
          `${tag}due:`,
          '',
          30_000,
          'n',
          5000,
          1024,
          3_600_000,
        ),
      ),
    );
  }
  const p1 = process.cpuUsage(p0);
  const cpuS = (await nodeCpu(primary)) - c0;
  client.disconnect();
  primary.disconnect();
  const us = (s) => Math.round((s / CLAIMS) * 1e8) / 100;
  return { redis: us(cpuS), client: us((p1.user + p1.system) / 1e6) };
}

/** `rate` messages/s for `seconds`; each node's busy share of a core meanwhile. */
async function measureRate(kind, rate, seconds) {
  const sharded = kind === 'SPUBLISH';
  const base = `bench:pubsub:${randomBytes(3).toString('hex')}:`;
  const channels = Array.from({ length: 16 }, (_, k) => (sharded ? `${base}{s${k}}changes` : `${base}changes`));
  const sub = new Cluster(seeds, { shardedSubscribers: sharded });
  let received = 0;
  sub.on(sharded ? 'smessage' : 'message', () => received++);
  for (const channel of new Set(channels)) await (sharded ? sub.ssubscribe(channel) : sub.subscribe(channel));
  const pub = new Cluster(seeds, { enableAutoPipelining: true });
  await pub.ping();
  const before = await Promise.all(nodes.map(nodeCpu));
  const t0 = Date.now();
  let sent = 0;
  while (Date.now() - t0 < seconds * 1000) {
    const due = Math.floor(((Date.now() - t0) / 1000) * rate);
    const batch = [];
    for (; sent < due; sent++) {
      const channel = channels[sent % channels.length];
      batch.push(sharded ? pub.spublish(channel, `pay_${sent}`) : pub.publish(channel, `pay_${sent}`));
    }
    await Promise.all(batch);
    await sleep(5);
  }
  const elapsed = (Date.now() - t0) / 1000;
  await sleep(200);
  const after = await Promise.all(nodes.map(nodeCpu));
  pub.disconnect();
  sub.disconnect();
  const shares = after.map((c, i) => Math.round(((c - before[i]) / elapsed) * 1000) / 10);
  return { kind, rate_per_s: Math.round(sent / elapsed), received, node_cpu_pct: shares };
}

const RATE = Number(option('rate') ?? 0);
if (RATE > 0) {
  const runs = [];
  for (let r = 0; r < 2; r++)
    for (const kind of ['PUBLISH', 'SPUBLISH'])
      runs.push(await measureRate(kind, RATE, Number(option('seconds') ?? 10)));
  nodes.forEach((n) => n.disconnect());
  process.stdout.write(`${JSON.stringify({ nodes: nodes.length, load_avg_1m: os.loadavg()[0], runs }, null, 1)}\n`);
  process.exit(0);
}

const rounds = [];
for (let r = 0; r < 3; r++) for (const kind of ['PUBLISH', 'SPUBLISH']) rounds.push(await measure(kind));
const claims = [];
for (let r = 0; r < 3; r++) claims.push(await measureClaims());
const sorted = (values) => values.sort((a, b) => a - b);
nodes.forEach((n) => n.disconnect());
const median = (kind) => {
  const v = rounds
    .filter((x) => x.kind === kind)
    .map((x) => x.node_cpu_s_per_1k)
    .sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
};
process.stdout.write(
  `${JSON.stringify(
    {
      nodes: nodes.length,
      load_avg_1m: os.loadavg()[0],
      pubsub_rounds: rounds,
      node_cpu_s_per_1k_messages: { PUBLISH: median('PUBLISH'), SPUBLISH: median('SPUBLISH') },
      empty_claim_cpu_us: {
        redis: sorted(claims.map((c) => c.redis)),
        client: sorted(claims.map((c) => c.client)),
      },
    },
    null,
    1,
  )}\n`,
);
