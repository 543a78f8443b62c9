import { errors } from 'oidc-provider';
import type {
  AuthorizationDetailsForIntrospection,
  Configuration,
  MTLSConfiguration,
  RichAuthorizationRequestsActiveConfiguration,
} from 'oidc-provider';
import { backchannelRequestTtl } from './ciba-hooks.js';
import { paymentInitiationSchema } from './payment-details.js';
import { subjectMatches, verifiedPeerCertificate } from './peer-certificate.js';

/** The declarative parts of the sandbox OP's configuration besides the CIBA hooks (ciba-hooks.ts). */
type Features = NonNullable<Configuration['features']>;

/** Seconds; the payment API's access tokens live as long as `AccessToken`. */
const ACCESS_TOKEN_SECONDS = 600;

export const TOKEN_LIFETIMES: NonNullable<Configuration['ttl']> = {
  BackchannelAuthenticationRequest: backchannelRequestTtl,
  AccessToken: ACCESS_TOKEN_SECONDS,
  // Open Banking client-credentials tokens (consents, status lookups)
  ClientCredentials: 600,
  IdToken: 600,
  Grant: 3600,
};

/** FAPI-style client authentication: certificates, private_key_jwt or a secret; PS256/ES256 only. */
export const CLIENT_AUTHENTICATION: Pick<Configuration, 'clientAuthMethods' | 'enabledJWA'> = {
  clientAuthMethods: ['tls_client_auth', 'private_key_jwt', 'client_secret_basic'],
  enabledJWA: {
    clientAuthSigningAlgValues: ['PS256', 'ES256'],
    idTokenSigningAlgValues: ['PS256'],
    requestObjectSigningAlgValues: ['PS256', 'ES256'],
  },
};

/** RFC 8705: tls_client_auth and certificate-bound access tokens, on CA-verified certificates only. */
export const MTLS_FEATURE: MTLSConfiguration = {
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
};

/** Every CIBA grant is for the payment API (RFC 8707 §2: the AS may default the resource). */
export function resourceIndicatorsFeature(apiUrl: string): Features['resourceIndicators'] {
  return {
    enabled: true,
    defaultResource: () => apiUrl,
    useGrantedResource: () => true,
    getResourceServerInfo(_ctx, resource) {
      if (resource !== apiUrl) throw new errors.InvalidTarget();
      return {
        scope: 'payments',
        audience: apiUrl,
        accessTokenFormat: 'jwt',
        accessTokenTTL: ACCESS_TOKEN_SECONDS,
        jwt: { sign: { alg: 'PS256' } },
      };
    },
  };
}

/**
 * RFC 9396 on the backchannel request: checked here, granted on approval through
 * provider.backchannelResult(..., { rar }), and copied into the access token and token response.
 */
/** oidc-provider's RAR variant that also answers introspection (its own type is not exported). */
type RichAuthorizationRequestsWithIntrospection = RichAuthorizationRequestsActiveConfiguration & {
  authorizationDetailsForIntrospection: AuthorizationDetailsForIntrospection;
};

export const RICH_AUTHORIZATION_REQUESTS_FEATURE: RichAuthorizationRequestsWithIntrospection = {
  enabled: true,
  types: {
    payment_initiation: {
      validate(_ctx, detail) {
        const result = paymentInitiationSchema.safeParse(detail);
        if (!result.success) {
          const fields = result.error.issues.map((issue) => issue.path.join('.') || issue.message).join(', ');
          throw new errors.InvalidAuthorizationDetails(`payment_initiation: ${fields}`);
        }
      },
    },
  },
  authorizationDetailsForGrantSource: (_ctx, source) => source.rar,
  authorizationDetailsForAccessToken: (_ctx, _token, source) => source?.rar,
  authorizationDetailsForIntrospection: (_ctx, token) => token.rar,
};
