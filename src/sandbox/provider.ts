import type { JWK } from 'jose';
import Provider from 'oidc-provider';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { accountClaimHooks, type SandboxUser } from './accounts.js';
import { cibaFeature, type CibaHookDeps } from './ciba-hooks.js';
import { CIBA_GRANT_TYPE, clientDisplayName, createPingFetch, type SandboxClient } from './oidc-clients.js';
import { answerSlowDown, EXPIRED_GRACE_SECONDS } from './poll-pacing.js';
import {
  CLIENT_AUTHENTICATION,
  MTLS_FEATURE,
  resourceIndicatorsFeature,
  RICH_AUTHORIZATION_REQUESTS_FEATURE,
  TOKEN_LIFETIMES,
} from './provider-features.js';
import { createRedisAdapterFactory } from './redis-adapter.js';
import { INTENT_ID_CLAIM } from './open-banking/ob-ciba.js';

// test/support/scripted-ob-bank.ts takes the kid rule from here.
export { withThumbprintKids } from './oidc-clients.js';

export interface ProviderDeps extends Omit<CibaHookDeps, 'users' | 'clientNames'> {
  issuer: string;
  apiUrl: string;
  clients: SandboxClient[];
  users: SandboxUser[];
  jwks: { keys: JWK[] };
  cookieKeys: string[];
}

const ROUTES = {
  token: '/token',
  backchannel_authentication: '/backchannel',
  userinfo: '/me',
  introspection: '/token/introspection',
  revocation: '/token/revocation',
  jwks: '/jwks',
};

/**
 * RFC 8705 §5: one server here, so the aliases name the same endpoints; a client that follows
 * them (as the shop does with certificate auth) behaves as it would against a split deployment.
 */
function mtlsEndpointAliases(issuer: string): Record<string, string> {
  return {
    token_endpoint: `${issuer}${ROUTES.token}`,
    backchannel_authentication_endpoint: `${issuer}${ROUTES.backchannel_authentication}`,
    userinfo_endpoint: `${issuer}${ROUTES.userinfo}`,
    introspection_endpoint: `${issuer}${ROUTES.introspection}`,
    revocation_endpoint: `${issuer}${ROUTES.revocation}`,
  };
}

function buildConfiguration(deps: ProviderDeps): Configuration {
  const users = new Map(deps.users.map((user) => [user.login, user]));
  const clientNames = new Map(deps.clients.map((client) => [client.clientId, clientDisplayName(client)]));
  return {
    adapter: createRedisAdapterFactory(deps.redis, deps.keys, {
      BackchannelAuthenticationRequest: EXPIRED_GRACE_SECONDS,
    }),
    jwks: deps.jwks,
    routes: ROUTES,
    cookies: { keys: deps.cookieKeys },
    ...CLIENT_AUTHENTICATION,
    clientDefaults: { id_token_signed_response_alg: 'PS256', grant_types: [CIBA_GRANT_TYPE], response_types: [] },
    scopes: ['openid', 'profile', 'payments'],
    claims: { openid: ['sub'], profile: ['name'], [INTENT_ID_CLAIM]: null },
    discovery: { mtls_endpoint_aliases: mtlsEndpointAliases(deps.issuer) },
    ...accountClaimHooks(users),
    fetch: createPingFetch(deps.clients),
    ttl: TOKEN_LIFETIMES,
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true },
      revocation: { enabled: true },
      claimsParameter: { enabled: true },
      // signed authentication requests (CIBA Core §7.1.1), as the Open Banking UK profile sends them
      requestObjects: { enabled: true },
      clientCredentials: { enabled: true },
      ciba: cibaFeature({ ...deps, users, clientNames }),
      mTLS: MTLS_FEATURE,
      resourceIndicators: resourceIndicatorsFeature(deps.apiUrl),
      richAuthorizationRequests: RICH_AUTHORIZATION_REQUESTS_FEATURE,
    },
  };
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
