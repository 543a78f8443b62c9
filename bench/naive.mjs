// Baseline (a): the obvious consumption device. One openid-client v6 pollBackchannelAuthenticationGrant
// loop per pending payment, awaited in this process: every wait is an in-memory timer, so a restart
// loses every pending payment (nothing is stored anywhere). Controlled by the bench over IPC.
/* global AbortController */
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { serveBaseline } from './baseline-ipc.mjs';

let controller = new AbortController();
let agent;
let config;

async function start(msg) {
  const { issuer, certsDir, clientId, n, interval, maxConnections } = msg;
  agent = new Agent({
    connect: {
      ca: readFileSync(`${certsDir}/ca.pem`),
      cert: readFileSync(`${certsDir}/client.pem`),
      key: readFileSync(`${certsDir}/client.key`),
    },
    connections: maxConnections,
    keepAliveTimeout: 30_000,
  });
  const metadata = await (
    await undiciFetch(`${issuer}/.well-known/openid-configuration`, { dispatcher: agent })
  ).json();
  config = new client.Configuration(metadata, clientId, { use_mtls_endpoint_aliases: true }, client.TlsClientAuth());
  config[client.customFetch] = (url, options) => undiciFetch(url, { ...options, dispatcher: agent });
  controller = new AbortController();
  const { signal } = controller;
  setMaxListeners(0, signal); // one listener per pending loop
  // Start each loop at its own offset so the polls spread evenly over the interval, as the service's do;
  // the first poll of loop i comes at interval + offset.
  for (let i = 0; i < n; i++) {
    const offset = Math.floor((i * interval * 1000) / n);
    setTimeout(() => {
      // pollBackchannelAuthenticationGrant waits `interval` before its first request
      client
        .pollBackchannelAuthenticationGrant(
          config,
          { auth_req_id: `naive_${i}`, expires_in: 3600, interval },
          undefined,
          { signal },
        )
        .catch(() => undefined);
    }, offset);
  }
}

serveBaseline({
  start,
  stop: async () => {
    controller.abort();
    void agent?.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
  },
});
