// Redis bytes per pending payment, without the rest of the bench: N payments created through the
// state machine (the same atomic step a checkout ends with), then MEMORY USAGE of every key under
// the run's prefix (÷ N, the due set counted as a per-payment share) and the used_memory delta ÷ N.
// Needs `npm run build`.
//
//   node bench/memory.mjs                 N = 1000, bench-like records, webhooks off and on
//   node bench/memory.mjs --n=5000 --realistic   two line items, metadata and a callback_url
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createKeys } from '../dist/store/keys.js';
import { createPaymentStore } from '../dist/store/payment-store.js';
import { createRedis } from '../dist/store/redis.js';
import { createStateMachine } from '../dist/payments/state-machine.js';
import { workItem } from '../dist/payments/work-items.js';
import { newBindingMessage, newClientSecret } from '../dist/crypto/random-ids.js';
// Shard 0: the one scheduler shard a single-Redis service claims from (SCHEDULER_SHARDS=1).
import { newPaymentId } from '../dist/payments/payment-id.js';
import { sha256 } from '../dist/crypto/hashing.js';
import { systemClock } from '../dist/clock.js';

const args = process.argv.slice(2);
const option = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const N = Number(option('n') ?? 1000);
const REALISTIC = args.includes('--realistic');
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const runId = randomBytes(3).toString('hex');
const admin = new Redis(REDIS_URL);

async function usedMemory() {
  return Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1] ?? 0);
}

async function keysUnder(prefix) {
  const out = [];
  let cursor = '0';
  do {
    const [next, found] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5000);
    cursor = next;
    out.push(...found);
  } while (cursor !== '0');
  return out;
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
    secretHash: sha256(newClientSecret(id)),
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
  const client = createRedis(REDIS_URL, { enableAutoPipelining: true });
  const keys = createKeys(prefix);
  const store = createPaymentStore({ redis: client, keys, retentionSeconds: 3600 });
  const sm = createStateMachine({ store, clock: systemClock, webhookTargets: { global: webhooks } });
  const before = await usedMemory();
  const t = Date.now();
  const batch = [];
  for (let i = 0; i < N; i++) {
    const id = newPaymentId(0);
    batch.push(sm.create(record(id, t, webhooks), { member: workItem.poll(id), at: t + 3600_000 }));
  }
  const results = await Promise.all(batch);
  if (results.some((r) => r !== 'ok')) throw new Error('create failed');
  const delta = (await usedMemory()) - before;
  const byKind = {};
  let total = 0;
  for (const key of await keysUnder(prefix)) {
    const bytes = Number(await admin.memory('USAGE', key, 'SAMPLES', 0));
    const rest = key.slice(prefix.length);
    const kind = rest === 'due' ? 'due' : rest.replace(/pay_[a-z2-7]+/, '<id>').replace(/msg_[a-z2-7]+/, '<evt>');
    byKind[kind] = (byKind[kind] ?? 0) + bytes;
    total += bytes;
  }
  const dueMembers = await admin.zcard(keys.shard(0).due);
  for (const k of Object.keys(byKind)) byKind[k] = Math.round(byKind[k] / N);
  const sample = (await keysUnder(`${prefix}{s0}pay:`))[0];
  const encoding = sample ? await admin.object('ENCODING', sample) : null;
  await client.quit();
  for (const key of await keysUnder(prefix)) await admin.unlink(key);
  return {
    webhooks,
    realistic: REALISTIC,
    n: N,
    memory_usage_per_pending: Math.round(total / N),
    breakdown: byKind,
    due_members_per_payment: dueMembers / N,
    used_memory_delta_per_pending: Math.round(delta / N),
    sample_key_encoding: { key: sample?.slice(prefix.length).replace(/pay_[a-z2-7]+/, '<id>'), encoding },
  };
}

for (const webhooks of [false, true]) console.log(JSON.stringify(await measure(webhooks)));
await admin.quit();
