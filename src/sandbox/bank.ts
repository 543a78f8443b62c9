import { Redis } from 'ioredis';
import type { JWK } from 'jose';
import type Provider from 'oidc-provider';
import { DEFAULT_USERS, type SandboxUser } from './accounts.js';
import { createBankApp } from './bank-app.js';
import { closeServer, startAppServer, startTlsServer, type RequestHandler } from './bank-servers.js';
import type { DevCertificates } from './certs.js';
import { createAutoDecisions, createDecide, type Decide } from './decisions.js';
import { createGotifyNotifier } from './gotify.js';
import type { GotifyOptions } from './gotify.js';
import { createSandboxKeys, type SandboxKeys } from './keys.js';
import { defineSandboxScripts, type SandboxRedis } from './lua-scripts.js';
import { registerClients, withThumbprintKids, type SandboxClient } from './oidc-clients.js';
import { createPaymentApi, type PaymentApi } from './payment-api.js';
import type { Transfer } from './transfers.js';
import { subjectMatches } from './peer-certificate.js';
import { createSandboxProvider } from './provider.js';
import { createRequestStore, toPublicRequest, type RequestStore } from './requests.js';
import type { PublicRequest } from './requests.js';
import { loadOrCreateCookieKeys, loadOrCreateSigningJwks } from './signing-keys.js';
import { createObApi, OB_API_PATH, type ObApi } from './open-banking/ob-api.js';
import { createObResources, type ObResources } from './open-banking/ob-resources.js';

export type { SandboxUser } from './accounts.js';
export type { SandboxClient } from './oidc-clients.js';
export type { Transfer } from './transfers.js';
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

/** The sandbox's URLs, once its ports are known. */
interface SandboxUrls {
  issuer: string;
  apiUrl: string;
  appUrl: string;
}

/** The state every part of the sandbox shares: one Redis connection, its keys, the request records. */
interface SandboxState {
  redis: SandboxRedis;
  keys: SandboxKeys;
  requests: RequestStore;
  obResources: ObResources;
  log: (line: string) => void;
}

function consoleLog(line: string): void {
  console.log(line);
}

/** The OP and the two payment APIs share one mTLS server: /api/open-banking/…, /api/…, the rest is the OP. */
function routeTlsRequests(issuer: string, provider: Provider, paymentApi: PaymentApi, obApi: ObApi): RequestHandler {
  const opCallback = provider.callback();
  const obPrefix = `/api${OB_API_PATH}`;
  return (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const path = url.pathname;
    if (path.startsWith(`${obPrefix}/`)) {
      void obApi.handle(req, res, path.slice(obPrefix.length));
    } else if (path === '/api' || path.startsWith('/api/')) {
      void paymentApi.handle(req, res, path.slice('/api'.length), url.searchParams);
    } else {
      void opCallback(req, res);
    }
  };
}

/** oidc-provider's own faults and refused backchannel requests, as console lines (messages only, no tokens). */
function logProviderErrors(provider: Provider, log: (line: string) => void): void {
  provider.on('server_error', (_ctx, error) => {
    log(`[bank] OP error: ${error.message}`);
  });
  // why a backchannel request was refused, for whoever sets up a client (descriptions carry no secrets)
  provider.on('backchannel_authentication.error', (_ctx, error) => {
    const described = error as Error & { error_description?: string };
    log(`[bank] backchannel request refused: ${described.error_description ?? error.message}`);
  });
}

/** The sandbox payment API and the Open Banking UK API, both verifying the OP's access tokens. */
function createPaymentApis(
  state: SandboxState,
  urls: SandboxUrls,
  options: SandboxBankOptions,
  jwks: { keys: JWK[] },
): { paymentApi: PaymentApi; obApi: ObApi } {
  const { redis, keys, log } = state;
  const { issuer, apiUrl } = urls;
  const paymentApi = createPaymentApi({
    redis,
    keys,
    issuer,
    apiUrl,
    jwks,
    log,
    clientForCertificate: (cert) =>
      options.clients.find(
        (client) => client.authMethod === 'tls_client_auth' && subjectMatches(cert, client.tlsSubjectDn ?? 'CN=client'),
      )?.clientId,
  });
  const obApi = createObApi({
    redis,
    keys,
    resources: state.obResources,
    issuer,
    apiUrl,
    jwks,
    clientKeys: new Map(
      options.clients.flatMap((client) =>
        client.jwks ? [[client.clientId, withThumbprintKids(client.jwks).keys] as const] : [],
      ),
    ),
    consentTtlSeconds: 600,
    settleDelayMs: options.obSettleDelayMs ?? 2000,
    log,
  });
  return { paymentApi, obApi };
}

/** Opens the sandbox's Redis state and loads (or creates) its signing and cookie keys and clients. */
async function openSandboxState(options: SandboxBankOptions, log: (line: string) => void) {
  const redis = defineSandboxScripts(new Redis(options.redisUrl, { maxRetriesPerRequest: 3 }));
  const keys = createSandboxKeys(options.redisPrefix);
  const state: SandboxState = {
    redis,
    keys,
    requests: createRequestStore(redis, keys),
    obResources: createObResources(redis, keys),
    log,
  };
  const [jwks, cookieKeys] = await Promise.all([
    loadOrCreateSigningJwks(redis, keys),
    loadOrCreateCookieKeys(redis, keys),
    registerClients({ redis, keys, clients: options.clients }),
  ]);
  return { state, jwks, cookieKeys };
}

export async function startSandboxBank(options: SandboxBankOptions): Promise<SandboxBank> {
  const log = options.log ?? consoleLog;
  const users = options.users ?? DEFAULT_USERS;
  // Before any connection is opened, so a bad Gotify URL fails start-up without leaks.
  const gotify = options.gotify === undefined ? undefined : createGotifyNotifier(options.gotify, log);
  const { state, jwks, cookieKeys } = await openSandboxState(options, log);
  const tlsServer = await startTlsServer(options.certs, options.port ?? 0, options.host ?? '127.0.0.1');
  const appServer = await startAppServer(options.appPort ?? 0, options.appHost ?? '127.0.0.1');
  const issuer = `https://${options.issuerHost ?? 'localhost'}:${tlsServer.port}`;
  const urls: SandboxUrls = { issuer, apiUrl: `${issuer}/api`, appUrl: `http://127.0.0.1:${appServer.port}/` };

  // Set below; decide() runs only after start-up, from the page, the API or an auto-approval.
  let provider: Provider | undefined = undefined;
  const decide = createDecide({ ...state, provider: () => provider });
  const autoDecisions = createAutoDecisions(options.autoApprove, options.approvalDelayMs ?? 0, decide);
  provider = createSandboxProvider({
    ...state,
    ...urls,
    clients: options.clients,
    users,
    interval: options.interval ?? 5,
    jwks,
    cookieKeys,
    onNewRequest(record) {
      gotify?.notify(record, `${urls.appUrl}requests/${record.id}`);
      autoDecisions.schedule(record);
    },
  });
  logProviderErrors(provider, log);
  const { paymentApi, obApi } = createPaymentApis(state, urls, options, jwks);
  tlsServer.setHandler(routeTlsRequests(issuer, provider, paymentApi, obApi));
  const bankApp = createBankApp({ ...state, users, appOrigin: () => urls.appUrl.slice(0, -1), decide });
  appServer.setHandler((req, res) => {
    void bankApp(req, res);
  });

  return sandboxBankHandle(urls, state.requests, decide, paymentApi, async () => {
    autoDecisions.cancelAll();
    await Promise.all([closeServer(tlsServer.server), closeServer(appServer.server), gotify?.drain()]);
    await state.redis.quit();
  });
}

function sandboxBankHandle(
  urls: SandboxUrls,
  requests: RequestStore,
  decide: Decide,
  paymentApi: PaymentApi,
  close: () => Promise<void>,
): SandboxBank {
  async function decideOrThrow(id: string, decision: 'approve' | 'deny'): Promise<void> {
    if (!(await decide(id, decision))) throw new Error(`request ${id} is unknown or no longer pending`);
  }
  return {
    ...urls,
    obApiUrl: `${urls.apiUrl}${OB_API_PATH}`,
    async pending(login) {
      const records = await requests.list(login);
      return records.filter((record) => record.status === 'pending').map(toPublicRequest);
    },
    approve: (id) => decideOrThrow(id, 'approve'),
    deny: (id) => decideOrThrow(id, 'deny'),
    transfers: () => paymentApi.transfers(),
    failNextPayments: (count) => paymentApi.failNextPayments(count),
    close,
  };
}
