import { createHash } from 'node:crypto';
import type { JWK } from 'jose';
import type { ClientMetadata, Configuration } from 'oidc-provider';
import type { SandboxKeys } from './keys.js';
import type { SandboxRedis } from './lua-scripts.js';

/** The clients the sandbox OP knows: their metadata, their registration in Redis and their ping endpoints. */
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

export const CIBA_GRANT_TYPE = 'urn:openid:params:grant-type:ciba';
const DEFAULT_CLIENT_NAME = 'Demo Tea Shop';

/** What the phone shows as the merchant of a client's requests. */
export function clientDisplayName(client: SandboxClient): string {
  return client.clientName ?? DEFAULT_CLIENT_NAME;
}

/**
 * oidc-provider requires an https `backchannel_client_notification_endpoint` (CIBA Core §4 says
 * it MUST be https) and its outgoing fetch refuses loopback and private addresses (SSRF guard).
 * The shop's /ciba/notify in the demo and tests listens on plain http://127.0.0.1, so a client with
 * such an endpoint is registered under the https form of the same URL, and the `fetch` hook
 * (createPingFetch) sends exactly those registered pings to the configured endpoint. Only endpoints
 * named in the sandbox's own options get this exception; every other outgoing request keeps the guard.
 */
function registeredNotificationEndpoint(endpoint: string): string {
  const url = new URL(endpoint);
  if (url.protocol === 'http:') url.protocol = 'https:';
  return url.href;
}

/** oidc-provider's `fetch` hook: registered ping endpoints go to their configured URL, the rest as usual. */
export function createPingFetch(clients: SandboxClient[]): NonNullable<Configuration['fetch']> {
  const pingTargets = new Map(
    clients.flatMap((client) =>
      client.deliveryMode === 'ping' && client.notificationEndpoint !== undefined
        ? [[registeredNotificationEndpoint(client.notificationEndpoint), client.notificationEndpoint] as const]
        : [],
    ),
  );
  return (input, init) => {
    const target = typeof input === 'string' || input instanceof URL ? pingTargets.get(String(input)) : undefined;
    if (target === undefined) return fetch(input, init);
    // See registeredNotificationEndpoint: a configured dev endpoint, sent without the SSRF dispatcher.
    const rest: RequestInit & { dispatcher?: unknown } = { ...init };
    delete rest.dispatcher;
    return fetch(target, rest);
  };
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
    client_name: clientDisplayName(client),
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

/**
 * Registers the clients through the adapter (oidc-provider reads `Client` records from it) rather
 * than as static `clients`: oidc-provider structuredClone()s static metadata, and under jest's VM
 * modules the clone's objects fail its plain-object check on `jwks`, so private_key_jwt clients
 * could not be tested. Rewritten at every start, so the options are the source of truth.
 */
export async function registerClients(deps: {
  redis: SandboxRedis;
  keys: SandboxKeys;
  clients: SandboxClient[];
}): Promise<void> {
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
