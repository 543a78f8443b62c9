// What building one ioredis Pipeline costs on the store client (auto-pipelining builds one per batch,
// every Redis call of every process goes through one): µs per `redis.pipeline()`, and per
// auto-pipelined GET round (one pipeline each), with the checkout's rate limiters defined as in the service.
//   npm run build && node bench/pipeline-cost.mjs [--n=200000]
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { createStoreClient } from '../dist/store/redis.js';

const N = Number(process.argv.find((a) => a.startsWith('--n='))?.slice(4) ?? 200_000);
const redis = createStoreClient(
  { redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', redisClusterNodes: null },
  { autoPipelining: true },
);
if (!process.env.NO_RL) new RateLimiterRedis({ storeClient: redis, keyPrefix: 'bench:rl', points: 10, duration: 60 });
await redis.ping();

function build(n) {
  let keep = 0;
  for (let i = 0; i < n; i++) keep += redis.pipeline().length;
  return keep;
}
build(20_000);
for (let round = 0; round < 3; round++) {
  const start = process.cpuUsage();
  build(N);
  const used = process.cpuUsage(start);
  console.log(`pipeline(): ${(((used.user + used.system) / N) * 1000).toFixed(0)} ns each`);
}
const key = `bench:pipe:${process.pid}`;
for (let round = 0; round < 3; round++) {
  const start = process.cpuUsage();
  for (let i = 0; i < 20_000; i++) await redis.get(key);
  const used = process.cpuUsage(start);
  console.log(`auto-pipelined GET: ${((used.user + used.system) / 20_000).toFixed(1)} µs CPU each`);
}
redis.disconnect();
