import { createHash, X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { JWK } from 'jose';
import Provider, { errors } from 'oidc-provider';
import type { ClientMetadata, Configuration, KoaContextWithOIDC } from 'oidc-provider';
import type { SandboxKeys } from './keys.js';
import type { SandboxRedis } from './lua-scripts.js';
import { paymentInitiationSchema } from './payment-details.js';
import type { AuthenticationRequestRecord, RequestStore } from './requests.js';
import { createRedisAdapterFactory } from './redis-adapter.js';
import { bindableConsent, INTENT_ID_CLAIM, requestedIntentId } from './open-banking/ob-ciba.js';
import type { Consent, ObResources } from './open-banking/ob-resources.js';

export interface SandboxClient {
  clientId: string;
  authMethod: 'tls_client_auth' | 'private_key_jwt' | 'client_secret_basic';
  deliveryMode: 'poll' | 'ping';
  notificationEndpoint?: string;
  jwks?: { keys: JWK[] };
  clientSecret?: string;
  tlsSubjectDn?: string;
  /** Shown on the phone as the merchant; defaults to "Demo Tea Shop". */
  clientName?: string;
  /** An Open Banking UK TPP: may get client-credentials tokens (scope payments) for the consent API. */
  openBanking?: boolean;
}

export interface SandboxUser {
  login: string;
  password: string;
  name: string;
  iban: string;
}

export interface ProviderDeps {
  issuer: string;
  apiUrl: string;
  appUrl: string;
  redis: SandboxRedis;
  keys: SandboxKeys;
  requests: RequestStore;
  clients: SandboxClient[];
  users: SandboxUser[];
  interval: number;
  jwks: { keys: JWK[] };
  cookieKeys: string[];
  log: (line: string) => void;
  onNewRequest: (record: AuthenticationRequestRecord) => void;
  /** The Open Banking consents a CIBA request may name as openbanking_intent_id. */
  obResources: ObResources;
}

export const CIBA_GRANT_TYPE = 'urn:openid:params:grant-type:ciba';
/** CIBA Core §7.1.1 leaves binding_message to the OP; the shop sends short codes like "K7P2-QX". */
const BINDING_MESSAGE = /^[A-Z0-9-]{1,20}$/;
/** Expired backchannel requests stay readable this long, so late polls get expired_token (CIBA Core §11). */
const EXPIRED_GRACE_SECONDS = 600;

/**
 * The TLS peer certificate, only when the TLS layer verified it against the dev CA.
 * The server runs with `rejectUnauthorized: false` solely so that discovery and JWKS work without a
 * client certificate (RFC 8705 §5 lets a client use the mTLS aliases only where it needs them); an
 * unverified certificate is treated exactly like no certificate, so client authentication and
 * certificate binding (RFC 8705 §2.1, §3) only ever see CA-verified certificates.
 */
export function verifiedPeerCertificate(socket: Socket): X509Certificate | undefined {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  return socket.getPeerX509Certificate();
}

/** RFC 8705 §2.1.2: compare the subject DN; node prints one RDN per line, most significant first. */
export function subjectMatches(cert: X509Certificate, expected: string): boolean {
  const normalize = (dn: string): string =>
    dn
      .split(/[\n,]/)
      .map((part) => part.trim())
      .filter((part) => part.length > 0)
      .join(',');
  return normalize(cert.subject) === normalize(expected);
}

/**
 * oidc-provider requires an https `backchannel_client_notification_endpoint` (CIBA Core §4 says
 * it MUST be https) and its outgoing fetch refuses loopback and private addresses (SSRF guard).
 * The shop's /ciba/notify in the demo and tests listens on plain http://127.0.0.1, so a client with
 * such an endpoint is registered under the https form of the same URL, and the `fetch` hook below
 * sends exactly those registered pings to the configured endpoint. Only endpoints named in the
 * sandbox's own options get this exception; every other outgoing request keeps the guard.
 */
function registeredNotificationEndpoint(endpoint: string): string {
  const url = new URL(endpoint);
  if (url.protocol === 'http:') url.protocol = 'https:';
  return url.href;
}

/**
 * Keys registered without a `kid` get their RFC 7638 thumbprint as kid, the name the shop's client
 * puts in its JWS headers (src/ciba/client-auth.ts), so oidc-provider and the OB API can select them.
 */
export function withThumbprintKids(jwks: { keys: JWK[] }): { keys: JWK[] } {
  const members: Record<string, string[]> = {
    RSA: ['e', 'kty', 'n'],
    EC: ['crv', 'kty', 'x', 'y'],
    OKP: ['crv', 'kty', 'x'],
  };
  return {
    keys: jwks.keys.map((jwk) => {
      const names = members[jwk.kty ?? ''];
      if (jwk.kid !== undefined || names === undefined) return jwk;
      const canonical = JSON.stringify(
        Object.fromEntries(names.map((name) => [name, (jwk as Record<string, unknown>)[name]])),
      );
      return { ...jwk, kid: createHash('sha256').update(canonical).digest('base64url') };
    }),
  };
}

export function toClientMetadata(client: SandboxClient): ClientMetadata {
  const metadata: ClientMetadata = {
    client_id: client.clientId,
    client_name: client.clientName ?? 'Demo Tea Shop',
    grant_types: client.openBanking ? [CIBA_GRANT_TYPE, 'client_credentials'] : [CIBA_GRANT_TYPE],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: client.authMethod,
    backchannel_token_delivery_mode: client.deliveryMode,
    backchannel_user_code_parameter: false,
    id_token_signed_response_alg: 'PS256',
    authorization_details_types: ['payment_initiation'],
    // RFC 8705 §3: access tokens are bound to the client's certificate. Every client's tokens: the payment API refuses tokens without cnf, so a client authenticating
    // otherwise (private_key_jwt) still presents its certificate on the token request.
    tls_client_certificate_bound_access_tokens: true,
  };
  if (client.authMethod === 'tls_client_auth') metadata.tls_client_auth_subject_dn = client.tlsSubjectDn ?? 'CN=client';
  if (client.authMethod === 'private_key_jwt' && client.jwks === undefined) {
    throw new Error(`sandbox client ${client.clientId}: private_key_jwt needs jwks`);
  }
  // also the keys of signed request objects (CIBA Core §7.1.1) and of x-jws-signature
  if (client.jwks !== undefined) metadata.jwks = withThumbprintKids(client.jwks);
  if (client.authMethod === 'client_secret_basic') {
    if (client.clientSecret === undefined) throw new Error(`sandbox client ${client.clientId}: needs clientSecret`);
    metadata.client_secret = client.clientSecret;
  }
  if (client.deliveryMode === 'ping') {
    if (client.notificationEndpoint === undefined) {
      throw new Error(`sandbox client ${client.clientId}: ping mode needs notificationEndpoint`);
    }
    metadata.backchannel_client_notification_endpoint = registeredNotificationEndpoint(client.notificationEndpoint);
  }
  return metadata;
}

function parsePaymentDetail(raw: unknown): ReturnType<typeof paymentInitiationSchema.parse> | undefined {
  if (typeof raw !== 'string') return undefined;
  const parsed: unknown = JSON.parse(raw);
  if (!Array.isArray(parsed)) return undefined;
  for (const candidate of parsed as unknown[]) {
    const result = paymentInitiationSchema.safeParse(candidate);
    if (result.success) return result.data;
  }
  return undefined;
}

/** What the phone shows of an Open Banking consent: its amount and creditor. */
function consentAsDetail(consent: Consent) {
  const { InstructedAmount, CreditorAccount } = consent.initiation;
  return {
    instructedAmount: { amount: InstructedAmount.Amount, currency: InstructedAmount.Currency },
    creditorName: CreditorAccount.Name ?? CreditorAccount.Identification,
    creditorAccount: { iban: CreditorAccount.Identification },
  };
}

/** Rewrites a too-early `authorization_pending` into `slow_down` (CIBA Core §11). */
async function answerSlowDown(ctx: KoaContextWithOIDC, deps: ProviderDeps): Promise<void> {
  const body = ctx.body as { error?: unknown } | undefined;
  if (ctx.oidc.route !== 'token' || body?.error !== 'authorization_pending') return;
  const authReqId = ctx.oidc.params?.auth_req_id;
  if (typeof authReqId !== 'string') return;
  const onTime = await deps.redis.checkPoll(
    deps.keys.poll(authReqId),
    Date.now(),
    (3600 + EXPIRED_GRACE_SECONDS) * 1000,
  );
  if (onTime === 0) {
    ctx.status = 400;
    ctx.body = { error: 'slow_down', error_description: 'you are polling too quickly; add 5 seconds to the interval' };
  }
}

function buildConfiguration(deps: ProviderDeps): Configuration {
  const users = new Map(deps.users.map((u) => [u.login, u]));
  const pingTargets = new Map(
    deps.clients.flatMap((c) =>
      c.deliveryMode === 'ping' && c.notificationEndpoint !== undefined
        ? [[registeredNotificationEndpoint(c.notificationEndpoint), c.notificationEndpoint] as const]
        : [],
    ),
  );
  const clientNames = new Map(deps.clients.map((c) => [c.clientId, c.clientName ?? 'Demo Tea Shop']));
  const mtlsUrl = (path: string): string => `${deps.issuer}${path}`;
  const routes = {
    token: '/token',
    backchannel_authentication: '/backchannel',
    userinfo: '/me',
    introspection: '/token/introspection',
    revocation: '/token/revocation',
    jwks: '/jwks',
  };

  return {
    adapter: createRedisAdapterFactory(deps.redis, deps.keys, {
      BackchannelAuthenticationRequest: EXPIRED_GRACE_SECONDS,
    }),
    jwks: deps.jwks,
    routes,
    cookies: { keys: deps.cookieKeys },
    clientAuthMethods: ['tls_client_auth', 'private_key_jwt', 'client_secret_basic'],
    enabledJWA: {
      clientAuthSigningAlgValues: ['PS256', 'ES256'],
      idTokenSigningAlgValues: ['PS256'],
      requestObjectSigningAlgValues: ['PS256', 'ES256'],
    },
    clientDefaults: { id_token_signed_response_alg: 'PS256', grant_types: [CIBA_GRANT_TYPE], response_types: [] },
    scopes: ['openid', 'profile', 'payments'],
    claims: { openid: ['sub'], profile: ['name'], [INTENT_ID_CLAIM]: null },
    // RFC 8705 §5: one server here, so the aliases name the same endpoints; a client that follows
    // them (as the shop does with certificate auth) behaves as it would against a split deployment.
    discovery: {
      mtls_endpoint_aliases: {
        token_endpoint: mtlsUrl(routes.token),
        backchannel_authentication_endpoint: mtlsUrl(routes.backchannel_authentication),
        userinfo_endpoint: mtlsUrl(routes.userinfo),
        introspection_endpoint: mtlsUrl(routes.introspection),
        revocation_endpoint: mtlsUrl(routes.revocation),
      },
    },
    findAccount(ctx, sub) {
      const user = users.get(sub);
      if (user === undefined) return undefined;
      // the consent this grant authorised (OB CIBA profile), for the ID token's openbanking_intent_id
      const intentId = requestedIntentId(ctx.oidc.entities.BackchannelAuthenticationRequest?.claims);
      return {
        accountId: user.login,
        claims: () => ({ sub: user.login, name: user.name, ...(intentId ? { [INTENT_ID_CLAIM]: intentId } : {}) }),
      };
    },
    extraTokenClaims(ctx) {
      // the access token names its consent, so the payment API takes it for that consent only
      const intentId = requestedIntentId(ctx.oidc.entities.BackchannelAuthenticationRequest?.claims);
      return intentId ? { [INTENT_ID_CLAIM]: intentId } : undefined;
    },
    fetch(input, init) {
      const target = typeof input === 'string' || input instanceof URL ? pingTargets.get(String(input)) : undefined;
      if (target === undefined) return fetch(input, init);
      // See registeredNotificationEndpoint: a configured dev endpoint, sent without the SSRF dispatcher.
      const rest: RequestInit & { dispatcher?: unknown } = { ...init };
      delete rest.dispatcher;
      return fetch(target, rest);
    },
    ttl: {
      // CIBA Core §7.1: requested_expiry, capped at 10 minutes for the sandbox.
      BackchannelAuthenticationRequest(ctx) {
        const requested = Number(ctx.oidc.params?.requested_expiry);
        return Number.isSafeInteger(requested) && requested > 0 ? Math.min(requested, 600) : 120;
      },
      AccessToken: 600,
      // Open Banking client-credentials tokens (consents, status lookups)
      ClientCredentials: 600,
      IdToken: 600,
      Grant: 3600,
    },
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true },
      revocation: { enabled: true },
      claimsParameter: { enabled: true },
      // signed authentication requests (CIBA Core §7.1.1), as the Open Banking UK profile sends them
      requestObjects: { enabled: true },
      clientCredentials: { enabled: true },
      ciba: {
        enabled: true,
        deliveryModes: ['poll', 'ping'],
        processLoginHint(_ctx, loginHint) {
          // CIBA Core §13: unknown_user_id, which the shop turns into unknown_bank_user.
          if (loginHint === undefined || !users.has(loginHint))
            throw new errors.UnknownUserId('no customer with this login_hint');
          return loginHint;
        },
        processLoginHintToken() {
          throw new errors.InvalidRequest('login_hint_token is not supported; use login_hint');
        },
        validateBindingMessage(_ctx, bindingMessage) {
          if (bindingMessage !== undefined && !BINDING_MESSAGE.test(bindingMessage)) {
            throw new errors.InvalidBindingMessage('binding_message must be 1 to 20 characters of A-Z, 0-9 and -');
          }
        },
        async validateRequestContext(ctx) {
          const intentId = requestedIntentId(ctx.oidc.params?.claims);
          const clientId = ctx.oidc.client?.clientId;
          if (intentId !== undefined && clientId !== undefined)
            await bindableConsent(deps.obResources, clientId, intentId);
        },
        verifyUserCode(_ctx, _account, userCode) {
          if (userCode !== undefined) throw new errors.InvalidRequest('user_code is not supported');
        },
        async triggerAuthenticationDevice(ctx, request, account, client) {
          const intentId = requestedIntentId(ctx.oidc.params?.claims);
          const consent = intentId === undefined ? undefined : await deps.obResources.getConsent(intentId);
          const detail = consent
            ? consentAsDetail(consent)
            : parsePaymentDetail(ctx.oidc.params?.authorization_details);
          const exp = request.exp ?? Math.floor(Date.now() / 1000) + request.expiration;
          const record = await deps.requests.create({
            authReqId: request.jti,
            clientId: client.clientId,
            clientName: clientNames.get(client.clientId) ?? client.clientId,
            login: account.accountId,
            bindingMessage: typeof ctx.oidc.params?.binding_message === 'string' ? ctx.oidc.params.binding_message : '',
            amount: detail?.instructedAmount.amount ?? '',
            currency: detail?.instructedAmount.currency ?? '',
            creditorName: detail?.creditorName ?? '',
            creditorIban: detail?.creditorAccount.iban ?? '',
            expiresAt: new Date(exp * 1000).toISOString(),
            ...(consent ? { consentId: consent.consentId } : {}),
          });
          // CIBA Core §7.3: `interval` is the minimum wait between polls; oidc-provider leaves it out.
          const intervalMs = deps.interval * 1000;
          await deps.redis
            .multi()
            .hset(deps.keys.poll(request.jti), 'next', Date.now() + intervalMs, 'interval', intervalMs)
            .pexpire(deps.keys.poll(request.jti), (exp + EXPIRED_GRACE_SECONDS) * 1000 - Date.now())
            .exec();
          (ctx.body as Record<string, unknown>).interval = deps.interval;
          const money = detail === undefined ? 'no amount' : `${record.currency} ${record.amount}`;
          const code = record.bindingMessage === '' ? '' : `, code ${record.bindingMessage}`;
          // The reference tutorial's "console notification"; never the auth_req_id.
          deps.log(
            `[bank] user "${record.login}" has a new request from ${record.clientName} (${money}${code}): ` +
              `approve at ${deps.appUrl}requests/${record.id}`,
          );
          deps.onNewRequest(record);
        },
      },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        getCertificate(ctx) {
          return verifiedPeerCertificate(ctx.req.socket);
        },
        certificateAuthorized(ctx) {
          return verifiedPeerCertificate(ctx.req.socket) !== undefined;
        },
        certificateSubjectMatches(ctx, property, expected) {
          const cert = verifiedPeerCertificate(ctx.req.socket);
          return cert !== undefined && property === 'tls_client_auth_subject_dn' && subjectMatches(cert, expected);
        },
      },
      resourceIndicators: {
        enabled: true,
        // Every CIBA grant is for the payment API (RFC 8707 §2: the AS may default the resource).
        defaultResource: () => deps.apiUrl,
        useGrantedResource: () => true,
        getResourceServerInfo(_ctx, resource) {
          if (resource !== deps.apiUrl) throw new errors.InvalidTarget();
          return {
            scope: 'payments',
            audience: deps.apiUrl,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 600,
            jwt: { sign: { alg: 'PS256' } },
          };
        },
      },
      // RFC 9396 on the backchannel request: checked here, granted on approval through
      // provider.backchannelResult(..., { rar }), and copied into the access token and token response.
      richAuthorizationRequests: {
        enabled: true,
        types: {
          payment_initiation: {
            validate(_ctx, detail) {
              const result = paymentInitiationSchema.safeParse(detail);
              if (!result.success) {
                throw new errors.InvalidAuthorizationDetails(
                  `payment_initiation: ${result.error.issues.map((i) => i.path.join('.') || i.message).join(', ')}`,
                );
              }
            },
          },
        },
        authorizationDetailsForGrantSource: (_ctx, source) => source.rar,
        authorizationDetailsForAccessToken: (_ctx, _token, source) => source?.rar,
        authorizationDetailsForIntrospection: (_ctx, token) => token.rar,
      },
    },
  };
}

/**
 * Registers the clients through the adapter (oidc-provider reads `Client` records from it) rather
 * than as static `clients`: oidc-provider structuredClone()s static metadata, and under jest's VM
 * modules the clone's objects fail its plain-object check on `jwks`, so private_key_jwt clients
 * could not be tested. Rewritten at every start, so the options are the source of truth.
 */
export async function registerClients(deps: Pick<ProviderDeps, 'redis' | 'keys' | 'clients'>): Promise<void> {
  const index = deps.keys.oidcClientIndex();
  const previous = await deps.redis.smembers(index);
  const multi = deps.redis.multi();
  for (const id of previous) multi.del(deps.keys.oidcModel('Client', id));
  multi.del(index);
  for (const client of deps.clients) {
    multi.set(deps.keys.oidcModel('Client', client.clientId), JSON.stringify(toClientMetadata(client)));
    multi.sadd(index, client.clientId);
  }
  await multi.exec();
}

/** The sandbox's OpenID Provider: CIBA poll + ping over mTLS, PS256, RAR payment_initiation. */
export function createSandboxProvider(deps: ProviderDeps): Provider {
  const provider = new Provider(deps.issuer, buildConfiguration(deps));
  provider.use(async (ctx, next) => {
    await next();
    await answerSlowDown(ctx as KoaContextWithOIDC, deps);
  });
  return provider;
}
