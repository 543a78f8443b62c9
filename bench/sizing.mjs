// Sizing a deployment (issue 12.5) from measured per-poll costs: worker processes (cores) and Redis
// primaries (shards) for 100k, 1M and 10M pending payments polled every 5 s. `npm run bench` stores
// the result as `sizing` in bench/results.json and prints it; this file re-derives it from any
// results file, with other assumptions if wanted:
//
//   node bench/sizing.mjs [results.json] [--headroom=0.5] [--node-memory-gb=8] [--memory-fill=0.5]
//                         [--bytes=<per pending>] [--interval=5] [--looks-per-s=100] [--claim-client-us=24] …
//
// (any assumption of DEFAULT_ASSUMPTIONS by its name, dashes for underscores).
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_ASSUMPTIONS = {
  interval_s: 5,
  /** Each worker process and each Redis primary is planned at ≤ this share of its one core. */
  headroom: 0.5,
  /** Node.js runs the service's JavaScript on one thread; Redis runs commands on one thread. */
  cores_per_process: 1,
  replicas_per_primary: 1,
  node_memory_gb: 8,
  /** Data kept ≤ this share of a node's memory: fork copy-on-write, replication buffers, fragmentation. */
  memory_fill: 0.5,
  /**
   * Looks per second of a busy worker: the loop claims again 10 ms after work finishes, or at once
   * when a shard gave all it was asked for (worker-loop.ts), and each look sends one claim per shard
   * it covers (jobs/shard-coverage.ts; counted even when the shard's next due time would let it skip).
   */
  looks_per_s: 100,
  /** A look asks each shard for its share of the free slots (≤ WORKER_CONCURRENCY, default 256): one each at most. */
  max_claims_per_look: 256,
  /** Workers covering each shard (WORKERS_PER_SHARD): a worker covers this × shards ÷ workers of them, all when fewer workers. */
  workers_per_shard: 2,
  /** Each shard a worker does not cover is swept once per this many seconds (one claim). */
  sweep_s: 5,
  /** One claim call on a shard with nothing due: Redis CPU and the worker's CPU (bench/redis-costs.mjs). */
  claim_redis_us: 7.4,
  claim_client_us: 24,
};
export const SIZES = [100_000, 1_000_000, 10_000_000];
const SHARD_CHOICES = [16, 32, 64, 128, 256, 512, 1024];

/** CRC16/XMODEM, as Redis Cluster hashes keys to 16384 slots. */
function crc16(text) {
  let crc = 0;
  for (const byte of Buffer.from(text)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}
const slotOfShard = (k) => crc16(`s${k}`) % 16384;

/**
 * Shards on the busiest of `primaries` (slots split in equal ranges, as `redis-cli --cluster create`
 * does) over the mean: the factor by which that primary carries more than its share.
 */
export function shardImbalance(shards, primaries) {
  const counts = new Array(primaries).fill(0);
  for (let k = 0; k < shards; k++) counts[Math.min(primaries - 1, Math.floor((slotOfShard(k) * primaries) / 16384))]++;
  return (Math.max(...counts) * primaries) / shards;
}

/** The run whose per-poll costs the sizing uses: the cluster, 1 worker, largest N; else the single-Redis service. */
function pickRun(results) {
  const byN = (a, b) => b.n - a.n;
  const cluster = (results.scaling ?? []).filter((r) => r.redis === 'cluster' && r.workers === 1).sort(byN);
  if (cluster.length > 0) return { run: cluster[0], from: `cluster, 1 worker, N = ${cluster[0].n}` };
  const single = (results.capacity ?? []).filter((r) => r.system === 'service').sort(byN);
  return single.length > 0 ? { run: single[0], from: `single Redis, 1 worker, N = ${single[0].n}` } : null;
}

/** Claim calls per second of one worker among `workers`: its covered shards every look, the others once per sweep. */
export function claimsPerWorker(shards, workers, a) {
  // More workers than 2 per shard: each shard gets ⌈workers ÷ shards⌉ of them (shard-coverage.ts).
  const perShard = Math.max(a.workers_per_shard, Math.ceil(workers / shards));
  const covered = workers <= perShard ? shards : Math.ceil((perShard * shards) / workers);
  return Math.min(covered, a.max_claims_per_look) * a.looks_per_s + (shards - covered) / a.sweep_s;
}

/**
 * The fewest worker processes for `workerCores` of polling when each also spends its claims' CPU. A
 * worker's claims fall as workers are added (it covers fewer shards), so "enough" is monotone in the
 * count: the smallest count that suffices is found by bisection.
 */
function workersFor(workerCores, shards, a) {
  const claimCoresOf = (workers) => (claimsPerWorker(shards, workers, a) * a.claim_client_us) / 1e6;
  const enough = (workers) => {
    const left = a.headroom - claimCoresOf(workers);
    return left > 0 && workers * left >= workerCores;
  };
  let hi = 1;
  while (!enough(hi)) {
    hi *= 2;
    if (hi > 1e6) return null;
  }
  let lo = Math.floor(hi / 2) + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (enough(mid)) hi = mid;
    else lo = mid + 1;
  }
  return { workers: hi, claimCores: claimCoresOf(hi) };
}

/**
 * For one N: the SCHEDULER_SHARDS and primaries that need the fewest cores (worker processes +
 * primaries). Each worker claims from the shards it covers on every look (R per shard fleet-wide)
 * and sweeps the others slowly, so claim calls grow with R × shards, not workers × shards; more
 * shards spread the polls over more primaries, more evenly.
 */
function sizeFor(n, base, a) {
  const pollsPerS = n / a.interval_s;
  const dataBytes = n * base.bytes;
  const memoryPerPrimary = a.node_memory_gb * 2 ** 30 * a.memory_fill;
  let best = null;
  let bestCores = Infinity;
  for (const shards of SHARD_CHOICES) {
    const workerCores = pollsPerS * base.svcPerPoll;
    const sized = workersFor(workerCores, shards, a);
    if (!sized) continue; // the claims alone fill a worker's share of its core
    const { workers, claimCores } = sized;
    const claimCallsPerS = workers * claimsPerWorker(shards, workers, a);
    const redisCores = pollsPerS * base.redisPerPoll + (claimCallsPerS * a.claim_redis_us) / 1e6;
    for (let primaries = 1; primaries <= shards; primaries++) {
      const f = shardImbalance(shards, primaries);
      if ((redisCores * f) / primaries > a.headroom || (dataBytes * f) / primaries > memoryPerPrimary) continue;
      const cores = workers + primaries;
      if (!best || cores < bestCores) {
        bestCores = cores;
        best = {
          worker_cores_busy: round(workerCores + workers * claimCores, 2),
          worker_processes: workers,
          redis_cores_busy: round(redisCores, 2),
          claim_calls_per_s: Math.round(claimCallsPerS),
          claims_share_of_redis: round((claimCallsPerS * a.claim_redis_us) / 1e6 / redisCores, 2),
          redis_primaries: primaries,
          scheduler_shards: shards,
          busiest_primary_factor: round(f, 2),
        };
      }
      break;
    }
  }
  const row = { pending: n, polls_per_s: pollsPerS, redis_data_gb: round(dataBytes / 2 ** 30, 2) };
  if (!best) return { ...row, feasible: false };
  return { ...row, ...best, redis_nodes: best.redis_primaries * (1 + a.replicas_per_primary), feasible: true };
}

export function deriveSizing(results, overrides = {}) {
  const a = { ...DEFAULT_ASSUMPTIONS, ...overrides };
  const picked = pickRun(results);
  if (!picked || !picked.run.cpu_s_per_1k_polls) return null;
  const { run, from } = picked;
  // The measured costs hold the claims of the measured setup (workers × their claims per second);
  // taken out, so that each size adds the claims of its own setup.
  const measuredWorkers = run.workers ?? 1;
  const claimsPerPoll0 =
    (measuredWorkers * claimsPerWorker(run.scheduler_shards ?? 1, measuredWorkers, a)) / run.polls_per_s;
  const base = {
    svcPerPoll: Math.max(0, run.cpu_s_per_1k_polls / 1000 - (claimsPerPoll0 * a.claim_client_us) / 1e6),
    redisPerPoll: Math.max(0, run.redis_cpu_s_per_1k_polls / 1000 - (claimsPerPoll0 * a.claim_redis_us) / 1e6),
    bytes: a.bytes ?? Math.max(run.redis_bytes_per_pending, run.redis_used_memory_delta_per_pending ?? 0),
  };
  return {
    from,
    load_avg_1m: run.load_avg_1m ?? null,
    measured: {
      service_cpu_s_per_1k_polls: run.cpu_s_per_1k_polls,
      redis_cpu_s_per_1k_polls: run.redis_cpu_s_per_1k_polls,
      service_cpu_s_per_1k_polls_without_claims: round(base.svcPerPoll * 1000, 4),
      redis_cpu_s_per_1k_polls_without_claims: round(base.redisPerPoll * 1000, 4),
      bytes_per_pending: base.bytes,
      redis_script_calls_per_poll: run.redis_script_calls_per_poll ?? null,
    },
    assumptions: a,
    rows: SIZES.map((n) => sizeFor(n, base, a)),
  };
}

function round(value, digits) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

const fmt = (n) => n.toLocaleString('en-US');

/** The sizing as Markdown (README) and plain text (bench output). */
export function sizingTable(sizing) {
  if (!sizing) return 'Sizing: no service run with per-poll costs in these results.';
  const m = sizing.measured;
  const a = sizing.assumptions;
  const lines = [
    `Sizing at ${a.interval_s} s, from the ${sizing.from} (load ${sizing.load_avg_1m?.join('→') ?? 'not recorded'}): service ${m.service_cpu_s_per_1k_polls} core-s per 1k polls (${m.service_cpu_s_per_1k_polls_without_claims} without claims), Redis ${m.redis_cpu_s_per_1k_polls} (${m.redis_cpu_s_per_1k_polls_without_claims}), ${m.bytes_per_pending} B per pending payment.`,
    `Assumptions: ≤ ${a.headroom * 100} % of one core busy per worker process and per primary; ${a.replicas_per_primary} replica per primary; data ≤ ${a.memory_fill * 100} % of ${a.node_memory_gb} GB per node; the busiest primary's share of shards counted; ${a.looks_per_s} looks/s per worker, one claim per covered shard each (${a.workers_per_shard} workers cover each shard; the other shards swept once per ${a.sweep_s} s), ${a.claim_client_us} µs of worker CPU and ${a.claim_redis_us} µs of Redis CPU per claim.`,
    '',
    '| pending | polls/s | workers (1 core each) | worker cores busy | SCHEDULER_SHARDS | primaries | nodes with replicas | Redis cores busy | claim calls/s (share of Redis CPU) | data GB |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...sizing.rows.map((r) =>
      r.feasible
        ? `| ${fmt(r.pending)} | ${fmt(r.polls_per_s)} | ${r.worker_processes} | ${r.worker_cores_busy} | ${r.scheduler_shards} | ${r.redis_primaries} | ${r.redis_nodes} | ${r.redis_cores_busy} | ${fmt(r.claim_calls_per_s)} (${Math.round(r.claims_share_of_redis * 100)} %) | ${r.redis_data_gb} |`
        : `| ${fmt(r.pending)} | ${fmt(r.polls_per_s)} | — ¹ | — | — | — | — | — | — | ${r.redis_data_gb} |`,
    ),
  ];
  if (sizing.rows.some((r) => !r.feasible))
    lines.push(
      '',
      '¹ Not reachable: at every shard count Redis needs more primaries than there are shards (at most 1024, one slot each), or the claims leave a worker no room for polls.',
    );
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const file = args.find((x) => !x.startsWith('--')) ?? join(dirname(fileURLToPath(import.meta.url)), 'results.json');
  const overrides = {};
  for (const arg of args.filter((x) => x.startsWith('--') && x.includes('='))) {
    const [name, value] = arg.slice(2).split('=');
    // --node-memory-gb=16 → node_memory_gb; --interval → interval_s; any assumption by its name
    const key = name === 'interval' ? 'interval_s' : name.replaceAll('-', '_');
    if (key === 'bytes' || key in DEFAULT_ASSUMPTIONS) overrides[key] = Number(value);
    else
      throw new Error(`unknown option --${name} (assumptions: ${Object.keys(DEFAULT_ASSUMPTIONS).join(', ')}, bytes)`);
  }
  process.stdout.write(`${sizingTable(deriveSizing(JSON.parse(readFileSync(file, 'utf8')), overrides))}\n`);
}
