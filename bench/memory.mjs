// Redis bytes per pending payment, without the rest of the bench: N payments created through the
// state machine (the same atomic step a checkout ends with), then MEMORY USAGE of every key under
// the run's prefix (÷ N, the due buckets and their directory counted as per-payment shares) and the used_memory delta ÷ N.
// Needs `npm run build`.
//
//   node bench/memory.mjs                 N = 1000, bench-like records, webhooks off and on
//   node bench/memory.mjs --n=5000 --realistic   two line items, metadata and a callback_url
//   node bench/memory.mjs --cluster       on REDIS_CLUSTER_NODES (default the local 7101–7106), 16 shards
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createKeys } from '../dist/store/keys.js';
import { createPaymentStore } from '../dist/store/payment-store.js';
import { clusterTarget, singleTarget } from './redis-target.mjs';
import { createStateMachine } from '../dist/payments/state-machine.js';
import { workItem } from '../dist/payments/work-items.js';
import { newBindingMessage, newClientSecret } from '../dist/crypto/random-ids.js';
// Shard 0: the one scheduler shard a single-Redis service claims from (SCHEDULER_SHARDS=1).
import { newPaymentId } from '../dist/payments/payment-id.js';
import { secretCheckValue } from '../dist/crypto/hashing.js';
import { systemClock } from '../dist/clock.js';

const args = process.argv.slice(2);
const option = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const N = Number(option('n') ?? 1000);
const REALISTIC = args.includes('--realistic');
const CLUSTER = args.includes('--cluster');
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SHARDS = CLUSTER ? 16 : 1;
const target = CLUSTER
  ? await clusterTarget(process.env.REDIS_CLUSTER_NODES ?? '127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103', SHARDS)
  : singleTarget(REDIS_URL);
if (!target) throw new Error('no Redis Cluster answers');
const runId = randomBytes(3).toString('hex');
/** The node(s) holding keys: one Redis, or every primary of the cluster. */
const nodes = CLUSTER ? await primaryNodes() : [new Redis(REDIS_URL)];

async function primaryNodes() {
  const probe = target.client();
  await probe.ping();
  const out = probe.nodes('master').map((n) => n.duplicate());
  probe.disconnect();
  return out;
}

async function keysUnder(prefix) {
  const out = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5000);
      cursor = next;
      out.push(...found.map((key) => ({ key, node })));
    } while (cursor !== '0');
  }
  return out;
}

/** `{s3}pay:pay_x` → `pay:<id>`, `{s3}due:17` → `due:<bucket>`, `{pl}paylist:17` → `paylist:<leaf>`. */
function kindOf(rest) {
  return rest
    .replace(/^\{s\d+\}/, '')
    .replace(/^due:\d+$/, 'due:<bucket>')
    .replace(/^\{pl\}paylist:\d+$/, 'paylist:<leaf>')
    .replace(/^\{pl\}/, '')
    .replace(/pay_[a-z2-7]+/, '<id>');
}

function record(id, t, webhooks) {
  return {
    id,
    status: 'pending_authorization',
    amount: REALISTIC ? 4170 : 1290,
    currency: 'eur',
    items: REALISTIC
      ? [
          { sku: 'tea-01', quantity: 2, unitAmount: 1290 },
          { sku: 'mug-03', quantity: 1, unitAmount: 1590 },
        ]
      : [{ sku: 'tea-01', quantity: 1, unitAmount: 1290 }],
    bindingMessage: newBindingMessage(),
    expiresAt: t + 3600_000,
    failureCode: null,
    createdAt: t,
    updatedAt: t,
    metadata: REALISTIC ? { order_id: `ord_${id.slice(4, 14)}` } : {},
    secretHash: secretCheckValue(newClientSecret(id)),
    authReqId: REALISTIC ? `${randomBytes(16).toString('hex')}` : `svc_${runId}_${id.slice(4, 10)}`,
    intervalMs: 5000,
    callbackUrl: webhooks ? 'https://shop.example/hooks/ciba' : null,
    sealedAccessToken: null,
    accessTokenExpiresAt: null,
    bankPaymentId: null,
    bankCalledAt: null,
    reconcileSince: null,
    heldToken: null,
    attempts: 0,
  };
}

async function measure(webhooks) {
  const prefix = `membench:${runId}:${webhooks ? 'on' : 'off'}:`;
  const client = target.client();
  const keys = createKeys(prefix);
  const store = createPaymentStore({ redis: client, keys, retentionSeconds: 3600 });
  const sm = createStateMachine({ store, clock: systemClock, webhookTargets: { global: webhooks } });
  const before = await target.usedMemory();
  const t = Date.now();
  for (let i = 0; i < N; i += 1000) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) {
      const id = newPaymentId(j % SHARDS);
      // Checkouts arrive over time: a few a millisecond, not all at once.
      const at = t + Math.floor(j / 4);
      batch.push(sm.create(record(id, at, webhooks), { member: workItem.poll(id), at: at + 3600_000 }));
    }
    const results = await Promise.all(batch);
    if (results.some((r) => r !== 'ok')) throw new Error('create failed');
  }
  const delta = (await target.usedMemory()) - before;
  const byKind = {};
  const encodings = {};
  let total = 0;
  let dueMembers = 0;
  for (const { key, node } of await keysUnder(prefix)) {
    const bytes = Number(await node.memory('USAGE', key, 'SAMPLES', 0));
    const kind = kindOf(key.slice(prefix.length));
    byKind[kind] = (byKind[kind] ?? 0) + bytes;
    total += bytes;
    if (kind === 'due' || kind === 'due:<bucket>') dueMembers += await node.zcard(key);
    const encoding = await node.object('ENCODING', key);
    encodings[kind] ??= {};
    encodings[kind][encoding] = (encodings[kind][encoding] ?? 0) + 1;
  }
  for (const k of Object.keys(byKind)) byKind[k] = Math.round(byKind[k] / N);
  client.disconnect();
  await target.deleteKeys(prefix);
  return {
    redis: target.name,
    webhooks,
    realistic: REALISTIC,
    n: N,
    memory_usage_per_pending: Math.round(total / N),
    breakdown: byKind,
    due_members_per_payment: dueMembers / N,
    used_memory_delta_per_pending: Math.round(delta / N),
    encodings,
  };
}

for (const webhooks of [false, true]) console.log(JSON.stringify(await measure(webhooks)));
for (const node of nodes) node.disconnect();
target.close();
