import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { AuthorizationDetail } from 'oidc-provider';
import { createBankApp } from './bank-app.js';
import type { DevCertificates } from './certs.js';
import { createGotifyNotifier } from './gotify.js';
import type { GotifyOptions } from './gotify.js';
import { createSandboxKeys } from './keys.js';
import { createPaymentApi } from './payment-api.js';
import type { Transfer } from './payment-api.js';
import { createSandboxProvider, registerClients, subjectMatches, withThumbprintKids } from './provider.js';
import type { SandboxClient, SandboxUser } from './provider.js';
import { createRequestStore, toPublicRequest } from './requests.js';
import type { AuthenticationRequestRecord, PublicRequest } from './requests.js';
import { loadOrCreateCookieKeys, loadOrCreateSigningJwks } from './signing-keys.js';
import { createObApi, OB_API_PATH } from './open-banking/ob-api.js';
import { INTENT_ID_CLAIM, requestedIntentId } from './open-banking/ob-ciba.js';
import { createObResources, type ObResources } from './open-banking/ob-resources.js';
import { defineSandboxScripts } from './lua-scripts.js';

export type { SandboxClient, SandboxUser } from './provider.js';
export type { Transfer } from './payment-api.js';
export type { PublicRequest } from './requests.js';
export type { GotifyOptions } from './gotify.js';

export interface SandboxBankOptions {
  /** Listening address; default 127.0.0.1. */
  host?: string;
  /** The host name in the issuer and API URLs: `localhost` (default) or `bank` (compose); the certificate names both. */
  issuerHost?: 'localhost' | 'bank';
  /** Listening address of the bank-app page; default 127.0.0.1 (in a container: 0.0.0.0 behind a loopback-published port). */
  appHost?: string;
  /** HTTPS port of the OP and payment API; 0 = random. */
  port?: number;
  /** Plain-HTTP loopback port of the bank-app page (the "phone"); 0 = random. */
  appPort?: number;
  certs: DevCertificates;
  redisUrl: string;
  /** All sandbox state lives in Redis under this prefix and survives a restart. */
  redisPrefix: string;
  clients: SandboxClient[];
  /** Default: one customer `user` / `password`. */
  users?: SandboxUser[];
  /** Seconds advertised in bc-authorize answers (CIBA Core §7.3); default 5. */
  interval?: number;
  /** With autoApprove: wait this long before deciding (default 0). */
  approvalDelayMs?: number;
  /** Decide every new request by itself, for scripted demos and tests. */
  autoApprove?: 'approve' | 'deny';
  /** Console notification lines; default console.log. */
  log?: (line: string) => void;
  /** Also push each new request to a Gotify server (the tutorial's mobile notification). */
  gotify?: GotifyOptions;
  /** Open Banking: how long a domestic payment stays Pending before AcceptedSettlementCompleted (default 2000 ms). */
  obSettleDelayMs?: number;
}

export interface SandboxBank {
  /** e.g. https://localhost:PORT */
  issuer: string;
  /** BANK_API_URL, e.g. https://localhost:PORT/api; payments at POST {apiUrl}/payments. */
  apiUrl: string;
  /** BANK_API_URL of the Open Banking UK profile: {apiUrl}/open-banking/v3.1/pisp. */
  obApiUrl: string;
  /** http://127.0.0.1:APP_PORT/ */
  appUrl: string;
  /** Pending requests (oldest last), optionally of one customer. */
  pending(login?: string): Promise<PublicRequest[]>;
  /** Rejects when the request is unknown or no longer pending. */
  approve(id: string): Promise<void>;
  deny(id: string): Promise<void>;
  transfers(): Promise<Transfer[]>;
  /** Test knob: the next `count` payment calls answer 500 without side effects. */
  failNextPayments(count: number): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_USERS: SandboxUser[] = [
  { login: 'user', password: 'password', name: 'Demo User', iban: 'DE02120300000000202051' },
];

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
    server.closeAllConnections();
  });
}

/** Approves with a grant for the request's scope, resource and authorization_details, or denies. */
async function settleBackchannelRequest(
  provider: Provider,
  record: AuthenticationRequestRecord,
  decision: 'approve' | 'deny',
): Promise<void> {
  const request = await provider.BackchannelAuthenticationRequest.find(record.authReqId, { ignoreExpiration: true });
  if (request === undefined) throw new Error('backchannel request not found (expired long ago?)');
  if (decision === 'deny') {
    // CIBA Core §11: the token endpoint then answers access_denied.
    await provider.backchannelResult(request, new errors.AccessDenied('the customer denied the request'));
    return;
  }
  const grant = new provider.Grant({ accountId: record.login, clientId: record.clientId });
  if (request.scope !== undefined) grant.addOIDCScope(request.scope);
  if (requestedIntentId(request.claims) !== undefined) grant.addOIDCClaims([INTENT_ID_CLAIM]);
  const resources = request.resource === undefined ? [] : [request.resource].flat();
  for (const resource of resources) grant.addResourceScope(resource, 'payments');
  const raw = request.params?.authorization_details;
  // RFC 9396 §7: what the customer approved is what the access token carries.
  const rar = typeof raw === 'string' ? (JSON.parse(raw) as AuthorizationDetail[]) : undefined;
  for (const detail of rar ?? []) grant.addRar(detail);
  await grant.save();
  await provider.backchannelResult(request, grant, {
    authTime: Math.floor(Date.now() / 1000),
    amr: ['pwd'],
    ...(rar === undefined ? {} : { rar }),
  });
}

/**
 * An Open Banking request decides its consent first: approval authorises it (AwaitingAuthorisation →
 * Authorised), denial rejects it. A consent that can no longer be authorised (expired, already
 * decided) turns an approval into a denial, so no token is issued for it.
 */
async function decideConsent(
  resources: ObResources,
  record: AuthenticationRequestRecord,
  decision: 'approve' | 'deny',
): Promise<'approve' | 'deny'> {
  if (record.consentId === undefined) return decision;
  if (decision === 'deny') {
    await resources.decideConsent(record.consentId, 'Rejected');
    return 'deny';
  }
  return (await resources.decideConsent(record.consentId, 'Authorised')) ? 'approve' : 'deny';
}

export async function startSandboxBank(options: SandboxBankOptions): Promise<SandboxBank> {
  const host = options.host ?? '127.0.0.1';
  const log =
    options.log ??
    ((line: string) => {
      console.log(line);
    });
  const users = options.users ?? DEFAULT_USERS;
  // Before any connection is opened, so a bad Gotify URL fails start-up without leaks.
  const gotify = options.gotify === undefined ? undefined : createGotifyNotifier(options.gotify, log);
  const redis = defineSandboxScripts(new Redis(options.redisUrl, { maxRetriesPerRequest: 3 }));
  const keys = createSandboxKeys(options.redisPrefix);
  const requests = createRequestStore(redis, keys);
  const [jwks, cookieKeys] = await Promise.all([
    loadOrCreateSigningJwks(redis, keys),
    loadOrCreateCookieKeys(redis, keys),
    registerClients({ redis, keys, clients: options.clients }),
  ]);

  let handleTls: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  const tlsServer = createHttpsServer(
    {
      key: readFileSync(options.certs.serverKey),
      cert: readFileSync(options.certs.serverCert),
      ca: readFileSync(options.certs.caCert),
      // Ask every peer for a certificate and verify it against the dev CA. rejectUnauthorized is
      // off only so discovery and the JWKS work without one; provider.ts and payment-api.ts use a
      // certificate only when socket.authorized is true (RFC 8705 §2.1, §3).
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      handleTls(req, res);
    },
  );
  let handleApp: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  const appServer = createHttpServer((req, res) => {
    handleApp(req, res);
  });
  const port = await listen(tlsServer, options.port ?? 0, host);
  const appPort = await listen(appServer, options.appPort ?? 0, options.appHost ?? '127.0.0.1');
  const issuer = `https://${options.issuerHost ?? 'localhost'}:${port}`;
  const apiUrl = `${issuer}/api`;
  const appUrl = `http://127.0.0.1:${appPort}/`;

  const obResources = createObResources(redis, keys);
  const timers = new Set<NodeJS.Timeout>();
  // Set below; decide() runs only after start-up, from the page, the API or an auto-approval.
  let provider: Provider | undefined = undefined;

  async function decide(id: string, asked: 'approve' | 'deny'): Promise<boolean> {
    const record = await requests.get(id);
    if (record === undefined || provider === undefined) return false;
    const decision = await decideConsent(obResources, record, asked);
    if (!(await requests.decide(id, decision === 'approve' ? 'approved' : 'denied'))) return false;
    try {
      await settleBackchannelRequest(provider, record, decision);
    } catch (error) {
      // The decision stands; a failed ping (CIBA Core §10.2) leaves the shop to its safety-net poll.
      log(`[bank] could not complete request ${id}: ${error instanceof Error ? error.message : 'unknown error'}`);
    }
    log(`[bank] user "${record.login}" ${decision === 'approve' ? 'approved' : 'denied'} request ${id}`);
    return true;
  }

  const op = createSandboxProvider({
    issuer,
    apiUrl,
    appUrl,
    redis,
    keys,
    requests,
    clients: options.clients,
    users,
    interval: options.interval ?? 5,
    jwks,
    cookieKeys,
    log,
    obResources,
    onNewRequest(record) {
      gotify?.notify(record, `${appUrl}requests/${record.id}`);
      const decision = options.autoApprove;
      if (decision === undefined) return;
      const timer = setTimeout(() => {
        timers.delete(timer);
        decide(record.id, decision).catch(() => undefined);
      }, options.approvalDelayMs ?? 0);
      timers.add(timer);
    },
  });
  provider = op;
  // oidc-provider emits server_error for its own faults; print the message only (no tokens in it).
  op.on('server_error', (_ctx, error) => {
    log(`[bank] OP error: ${error.message}`);
  });
  // why a backchannel request was refused, for whoever sets up a client (descriptions carry no secrets)
  op.on('backchannel_authentication.error', (_ctx, error) => {
    const described = error as Error & { error_description?: string };
    log(`[bank] backchannel request refused: ${described.error_description ?? error.message}`);
  });
  const paymentApi = createPaymentApi({
    redis,
    keys,
    issuer,
    apiUrl,
    jwks,
    log,
    clientForCertificate: (cert) =>
      options.clients.find(
        (c) => c.authMethod === 'tls_client_auth' && subjectMatches(cert, c.tlsSubjectDn ?? 'CN=client'),
      )?.clientId,
  });
  const obApi = createObApi({
    redis,
    keys,
    resources: obResources,
    issuer,
    apiUrl,
    jwks,
    clientKeys: new Map(
      options.clients.flatMap((c) => (c.jwks ? [[c.clientId, withThumbprintKids(c.jwks).keys] as const] : [])),
    ),
    consentTtlSeconds: 600,
    settleDelayMs: options.obSettleDelayMs ?? 2000,
    log,
  });
  const opCallback = op.callback();
  handleTls = (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const path = url.pathname;
    if (path.startsWith(`/api${OB_API_PATH}/`)) {
      void obApi.handle(req, res, path.slice(`/api${OB_API_PATH}`.length));
    } else if (path === '/api' || path.startsWith('/api/')) {
      void paymentApi.handle(req, res, path.slice('/api'.length), url.searchParams);
    } else {
      void opCallback(req, res);
    }
  };
  handleApp = createBankAppHandler();

  function createBankAppHandler(): (req: IncomingMessage, res: ServerResponse) => void {
    const app = createBankApp({ redis, keys, requests, users, appOrigin: () => appUrl.slice(0, -1), decide });
    return (req, res) => {
      void app(req, res);
    };
  }

  async function decideOrThrow(id: string, decision: 'approve' | 'deny'): Promise<void> {
    if (!(await decide(id, decision))) throw new Error(`request ${id} is unknown or no longer pending`);
  }

  return {
    issuer,
    apiUrl,
    obApiUrl: `${apiUrl}${OB_API_PATH}`,
    appUrl,
    async pending(login) {
      const records = await requests.list(login);
      return records.filter((r) => r.status === 'pending').map(toPublicRequest);
    },
    approve: (id) => decideOrThrow(id, 'approve'),
    deny: (id) => decideOrThrow(id, 'deny'),
    transfers: () => paymentApi.transfers(),
    failNextPayments: (count) => paymentApi.failNextPayments(count),
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.all([closeServer(tlsServer), closeServer(appServer), gotify?.drain()]);
      await redis.quit();
    },
  };
}
