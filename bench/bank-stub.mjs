// A small, fast CIBA bank for the benchmark, run in its own process (child_process.fork) so its CPU
// is not counted as the service's. HTTPS with client-certificate checking and keep-alive, on
// 127.0.0.1 only. Serves discovery (with mtls_endpoint_aliases), JWKS, bc-authorize, token and
// payments. Every auth_req_id is pending until the bench approves it over IPC; then the token
// endpoint answers with a PS256 ID token. It records, per auth_req_id, when each poll arrived, so
// the bench can compare the gap between two polls with the interval.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { performance } from 'node:perf_hooks';
import { Buffer } from 'node:buffer';
import { URLSearchParams } from 'node:url';
import { fetch } from 'undici';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

const certsDir = process.env.STUB_CERTS_DIR;
const clientId = process.env.STUB_CLIENT_ID ?? 'bench-client';
const now = () => performance.timeOrigin + performance.now();

let interval = Number(process.env.STUB_INTERVAL ?? 5);
let expiresIn = Number(process.env.STUB_EXPIRES_IN ?? 3600);
let pingUrl = null;

const { privateKey, publicKey } = await generateKeyPair('PS256', { extractable: true });
const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-1', alg: 'PS256', use: 'sig' };
const jwksBody = Buffer.from(JSON.stringify({ keys: [jwk] }));

/** auth_req_id → last poll arrival (ms). */
const lastPoll = new Map();
/** auth_req_id → client_notification_token (ping mode). */
const notifyTokens = new Map();
const approved = new Set();
/** auth_req_id → the authorization_details asked for, granted back in the token response (RFC 9396 §7). */
const grantedDetails = new Map();
/** end_to_end_id → booked payment, for the reconciliation lookup (DESIGN.md "Reconciliation"). */
const booked = new Map();
let recording = false;
let gaps = [];
let polls = 0;
let windowPolls = 0;
let bcAuthorizeCount = 0;
/**
 * Since the first poll after a reset, per second: [second polls, their max lateness ms, how many were
 * later than 250 ms (the issue's p99 aim)] — the start-up, window or not.
 */
let firstPollAt = null;
let perSecond = [];
const debugMax = new Map();

const pendingBody = Buffer.from('{"error":"authorization_pending"}');
const jsonHeaders = (length) => ({
  'content-type': 'application/json',
  'cache-control': 'no-store',
  'content-length': String(length),
});

const server = createServer(
  {
    key: readFileSync(`${certsDir}/bank.key`),
    cert: readFileSync(`${certsDir}/bank.pem`),
    ca: readFileSync(`${certsDir}/ca.pem`),
    requestCert: true,
    rejectUnauthorized: true,
    keepAlive: true,
    keepAliveTimeout: 60_000,
  },
  (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).catch((err) => {
        res.writeHead(500).end(String(err));
      });
    });
  },
);
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.maxRequestsPerSocket = 0;

let issuer = '';

function sendJson(res, status, value) {
  const body = Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value));
  res.writeHead(status, jsonHeaders(body.length)).end(body);
}

async function handle(req, res, body) {
  const url = req.url ?? '/';
  if (req.method === 'POST' && (url === '/token' || url === '/mtls/token')) return token(res, body);
  if (req.method === 'POST' && (url === '/bc-authorize' || url === '/mtls/bc-authorize')) return bcAuthorize(res, body);
  if (req.method === 'POST' && url === '/payments') {
    const endToEndId = JSON.parse(body.toString('utf8')).end_to_end_id;
    const payment = booked.get(endToEndId) ?? { id: `bp_${randomBytes(8).toString('hex')}`, status: 'accepted' };
    booked.set(endToEndId, payment);
    return sendJson(res, 201, payment);
  }
  if (req.method === 'GET' && url.startsWith('/payments?')) {
    const endToEndId = new URLSearchParams(url.slice('/payments?'.length)).get('end_to_end_id');
    const payment = booked.get(endToEndId);
    return sendJson(res, 200, { payments: payment ? [{ ...payment, end_to_end_id: endToEndId }] : [] });
  }
  if (req.method === 'GET' && url === '/.well-known/openid-configuration') return sendJson(res, 200, metadata());
  if (req.method === 'GET' && url === '/jwks') return sendJson(res, 200, jwksBody);
  sendJson(res, 404, { error: 'not_found' });
}

function metadata() {
  return {
    issuer,
    token_endpoint: `${issuer}/token`,
    backchannel_authentication_endpoint: `${issuer}/bc-authorize`,
    jwks_uri: `${issuer}/jwks`,
    grant_types_supported: ['urn:openid:params:grant-type:ciba'],
    backchannel_token_delivery_modes_supported: ['poll', 'ping'],
    id_token_signing_alg_values_supported: ['PS256'],
    token_endpoint_auth_methods_supported: ['tls_client_auth'],
    tls_client_certificate_bound_access_tokens: true,
    mtls_endpoint_aliases: {
      token_endpoint: `${issuer}/mtls/token`,
      backchannel_authentication_endpoint: `${issuer}/mtls/bc-authorize`,
    },
  };
}

function bcAuthorize(res, body) {
  const form = new URLSearchParams(body.toString('latin1'));
  bcAuthorizeCount++;
  const authReqId = `ar_${randomBytes(12).toString('hex')}`;
  const token = form.get('client_notification_token');
  if (token) notifyTokens.set(authReqId, token);
  grantedDetails.set(authReqId, JSON.parse(form.get('authorization_details') ?? '[]'));
  sendJson(res, 200, { auth_req_id: authReqId, expires_in: expiresIn, interval });
}

/** The auth_req_id field of a form body, without building a URLSearchParams per poll. */
function authReqIdOf(body) {
  const s = body.toString('latin1');
  const at = s.indexOf('auth_req_id=');
  if (at < 0) return '';
  const end = s.indexOf('&', at);
  return decodeURIComponent(s.slice(at + 12, end < 0 ? undefined : end));
}

async function token(res, body) {
  const id = authReqIdOf(body);
  const t = now();
  polls++;
  const last = lastPoll.get(id);
  lastPoll.set(id, t);
  firstPollAt ??= t;
  if (last !== undefined) {
    const row = (perSecond[Math.floor((t - firstPollAt) / 1000)] ??= [0, 0, 0]);
    const late = t - last - interval * 1000;
    row[0]++;
    row[1] = Math.max(row[1], late);
    if (late > 250) row[2]++;
  }
  if (recording) {
    windowPolls++;
    if (last !== undefined) {
      gaps.push(t - last);
      if (process.env.STUB_DEBUG) {
        const sec = Math.floor(t / 1000) % 1000;
        const late = t - last - interval * 1000;
        if (late > (debugMax.get(sec) ?? 0)) debugMax.set(sec, late);
      }
    }
  }
  if (!approved.has(id)) return sendJson(res, 400, pendingBody);
  approved.delete(id);
  const authorizationDetails = grantedDetails.get(id) ?? [];
  grantedDetails.delete(id);
  const iat = Math.floor(Date.now() / 1000);
  const idToken = await new SignJWT({ 'urn:openid:params:jwt:claim:auth_req_id': id })
    .setProtectedHeader({ alg: 'PS256', kid: jwk.kid })
    .setIssuer(issuer)
    .setAudience(clientId)
    .setSubject('customer-1')
    .setIssuedAt(iat)
    .setExpirationTime(iat + 300)
    .sign(privateKey);
  sendJson(res, 200, {
    access_token: randomUUID(),
    token_type: 'Bearer',
    expires_in: 600,
    id_token: idToken,
    authorization_details: authorizationDetails,
  });
}

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function gapStats() {
  const intervalMs = interval * 1000;
  const sorted = Float64Array.from(gaps).sort();
  const late = sorted.map((g) => Math.max(0, g - intervalMs));
  let early = 0;
  for (const g of sorted) if (g < intervalMs) early++;
  return {
    windowPolls,
    gaps: sorted.length,
    early,
    min_gap_ms: sorted.length ? sorted[0] : null,
    lateness: {
      p50: quantile(late, 0.5),
      p99: quantile(late, 0.99),
      max: sorted.length ? late[late.length - 1] : null,
    },
  };
}

async function ping(id) {
  const tokenValue = notifyTokens.get(id);
  if (!tokenValue || !pingUrl) return;
  await fetch(pingUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokenValue}`, 'content-type': 'application/json' },
    body: JSON.stringify({ auth_req_id: id }),
  }).then((r) => r.arrayBuffer());
}

process.on('message', (msg) => {
  const reply = (value) => process.send?.({ id: msg.id, ...value });
  switch (msg.cmd) {
    case 'config':
      if (msg.interval !== undefined) interval = msg.interval;
      if (msg.expiresIn !== undefined) expiresIn = msg.expiresIn;
      if (msg.pingUrl !== undefined) pingUrl = msg.pingUrl;
      return reply({});
    case 'reset':
      lastPoll.clear();
      notifyTokens.clear();
      approved.clear();
      grantedDetails.clear();
      booked.clear();
      gaps = [];
      polls = 0;
      windowPolls = 0;
      bcAuthorizeCount = 0;
      firstPollAt = null;
      perSecond = [];
      return reply({});
    case 'window':
      if (msg.on) {
        gaps = [];
        windowPolls = 0;
        recording = true;
        return reply({ at: now() });
      }
      recording = false;
      if (process.env.STUB_DEBUG)
        process.stderr.write(
          `[stub] cpu ${JSON.stringify(process.cpuUsage())} max lateness per second: ${[...debugMax].map(([k, v]) => `${k}:${Math.round(v)}`).join(' ')}\n`,
        );
      debugMax.clear();
      return reply({ at: now(), ...gapStats(), firstPollAt, timeline: Array.from(perSecond, (r) => r ?? [0, 0, 0]) });
    case 'timeline':
      return reply({ at: now(), firstPollAt, timeline: Array.from(perSecond, (r) => r ?? [0, 0, 0]) });
    case 'approve': {
      const at = {};
      for (const id of msg.ids) {
        approved.add(id);
        at[id] = now();
        ping(id).catch(() => undefined);
      }
      return reply({ at });
    }
    case 'stats':
      return reply({ polls, bcAuthorizeCount, cpu: process.cpuUsage(), rss: process.memoryUsage().rss });
    case 'stop':
      server.closeAllConnections();
      server.close(() => process.exit(0));
      return undefined;
    default:
      return reply({ error: `unknown command ${String(msg.cmd)}` });
  }
});

server.listen(Number(process.env.STUB_PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  issuer = `https://127.0.0.1:${port}`;
  process.send?.({ ready: true, port, issuer });
});
