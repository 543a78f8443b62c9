// Baseline (b): one BullMQ delayed job per poll step. A job sends one token request (undici, the
// same kind of mTLS keep-alive Agent as the service) and, while the answer is authorization_pending,
// adds the next step as a new job delayed by the interval. Jobs live in Redis, so pending payments
// survive a restart. Controlled by the bench over IPC.
import { readFileSync } from 'node:fs';
import { Queue, Worker } from 'bullmq';
import { Agent } from 'undici';
import { serveBaseline } from './baseline-ipc.mjs';

let queue;
let worker;
let agent;

async function start(msg) {
  const { issuer, certsDir, clientId, n, interval, prefix, concurrency, maxConnections, redisUrl } = msg;
  const url = new URL(redisUrl);
  const conn = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
  agent = new Agent({
    connect: {
      ca: readFileSync(`${certsDir}/ca.pem`),
      cert: readFileSync(`${certsDir}/client.pem`),
      key: readFileSync(`${certsDir}/client.key`),
    },
    connections: maxConnections,
    keepAliveTimeout: 30_000,
  });
  const tokenUrl = new URL(`${issuer}/mtls/token`);
  const bodyPrefix = `grant_type=${encodeURIComponent('urn:openid:params:grant-type:ciba')}&client_id=${encodeURIComponent(clientId)}&auth_req_id=`;
  const jobOptions = { delay: interval * 1000, removeOnComplete: true, removeOnFail: true };
  queue = new Queue('polls', { connection: conn, prefix });
  worker = new Worker(
    'polls',
    async (job) => {
      const response = await agent.request({
        origin: tokenUrl.origin,
        path: tokenUrl.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: bodyPrefix + job.data.authReqId,
      });
      const text = await response.body.text();
      const answer = JSON.parse(text);
      if (answer.error === 'authorization_pending' || answer.error === 'slow_down') {
        await queue.add('poll', job.data, jobOptions);
      }
    },
    { connection: conn, prefix, concurrency },
  );
  // The worker is running already. Seed: the first poll of payment i is due at 1 s + i·interval/n, spread like the service's.
  for (let i = 0; i < n; i += 1000) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) {
      batch.push({
        name: 'poll',
        data: { authReqId: `bull_${j}` },
        opts: { delay: 1000 + Math.floor((j * interval * 1000) / n), removeOnComplete: true, removeOnFail: true },
      });
    }
    await queue.addBulk(batch);
  }
}

serveBaseline({
  start,
  stop: () => Promise.allSettled([worker?.close(true), queue?.close(), agent?.close()]),
});
