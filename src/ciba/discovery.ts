import type { Dispatcher } from 'undici';
import { z } from 'zod';
import type { Config } from '../config.js';
import { isJsonContentType, readJsonObject } from './http-response.js';

export const CIBA_GRANT_TYPE = 'urn:openid:params:grant-type:ciba';

/** What the client uses of the bank's metadata, with the mTLS aliases already applied. */
export interface BankMetadata {
  issuer: string;
  tokenEndpoint: URL;
  backchannelAuthenticationEndpoint: URL;
  jwksUri: URL;
  /** As advertised; undefined when the bank does not say. */
  requestObjectSigningAlgs: string[] | undefined;
}

export class DiscoveryError extends Error {
  override readonly name = 'DiscoveryError';
}

const httpsUrl = z.url({ protocol: /^https$/ });

const metadataSchema = z.object({
  issuer: z.string().min(1),
  token_endpoint: httpsUrl,
  backchannel_authentication_endpoint: httpsUrl,
  jwks_uri: httpsUrl,
  grant_types_supported: z.array(z.string()).optional(),
  backchannel_token_delivery_modes_supported: z.array(z.string()).optional(),
  backchannel_authentication_request_signing_alg_values_supported: z.array(z.string()).optional(),
  id_token_signing_alg_values_supported: z.array(z.string()).optional(),
  token_endpoint_auth_methods_supported: z.array(z.string()).optional(),
  token_endpoint_auth_signing_alg_values_supported: z.array(z.string()).optional(),
  mtls_endpoint_aliases: z
    .object({ token_endpoint: httpsUrl.optional(), backchannel_authentication_endpoint: httpsUrl.optional() })
    .optional(),
});
type RawMetadata = z.infer<typeof metadataSchema>;

/**
 * Fetches `${issuer}/.well-known/openid-configuration` once; a failure is not cached, so the next
 * call tries again. Concurrent callers share one request.
 * @see https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig
 */
export function createDiscovery(deps: { config: Pick<Config, 'bank' | 'ciba'>; agent: Dispatcher }): {
  getMetadata(): Promise<BankMetadata>;
  current(): BankMetadata | undefined;
} {
  let metadata: BankMetadata | undefined;
  let inFlight: Promise<BankMetadata> | undefined;
  return {
    current: () => metadata,
    getMetadata() {
      if (metadata) return Promise.resolve(metadata);
      inFlight ??= fetchMetadata(deps.config, deps.agent)
        .then((m) => (metadata = m))
        .finally(() => (inFlight = undefined));
      return inFlight;
    },
  };
}

async function fetchMetadata(config: Pick<Config, 'bank' | 'ciba'>, agent: Dispatcher): Promise<BankMetadata> {
  const url = new URL(`${config.bank.issuer}/.well-known/openid-configuration`);
  const response = await agent.request({
    origin: url.origin,
    path: url.pathname,
    method: 'GET',
    headers: { accept: 'application/json' },
  });
  const body = await readJsonObject(response);
  if (response.statusCode !== 200 || !isJsonContentType(response.headers) || !body) {
    throw new DiscoveryError(`discovery answered ${response.statusCode} without JSON metadata`);
  }
  const parsed = metadataSchema.safeParse(body);
  if (!parsed.success) throw new DiscoveryError(`discovery metadata invalid: ${parsed.error.issues[0]?.message ?? ''}`);
  return validateMetadata(parsed.data, config);
}

/**
 * Checks the issuer exactly and that the bank supports what we are configured to use (only when it
 * advertises the list), then applies `mtls_endpoint_aliases`: we always present a client certificate,
 * so the aliases are the endpoints that honour it.
 * @see https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfigurationValidation
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-5
 * @see https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#registration
 */
export function validateMetadata(m: RawMetadata, config: Pick<Config, 'bank' | 'ciba'>): BankMetadata {
  if (m.issuer !== config.bank.issuer) throw new DiscoveryError('discovery issuer does not match BANK_ISSUER');
  requireAdvertised(m.grant_types_supported, CIBA_GRANT_TYPE, 'grant_types_supported');
  requireAdvertised(m.backchannel_token_delivery_modes_supported, config.ciba.deliveryMode, 'delivery modes');
  requireAdvertised(m.id_token_signing_alg_values_supported, config.bank.idTokenAlg, 'ID token algs');
  requireAdvertised(m.token_endpoint_auth_methods_supported, config.bank.clientAuthMethod, 'client auth methods');
  if (config.bank.clientAuthMethod === 'private_key_jwt') {
    requireAdvertised(m.token_endpoint_auth_signing_alg_values_supported, config.bank.signingAlg, 'client auth algs');
  }
  if (config.ciba.signedRequest) {
    const algs = m.backchannel_authentication_request_signing_alg_values_supported;
    requireAdvertised(algs, config.bank.signingAlg, 'request object algs');
  }
  const aliases = m.mtls_endpoint_aliases;
  return {
    issuer: m.issuer,
    tokenEndpoint: new URL(aliases?.token_endpoint ?? m.token_endpoint),
    backchannelAuthenticationEndpoint: new URL(
      aliases?.backchannel_authentication_endpoint ?? m.backchannel_authentication_endpoint,
    ),
    jwksUri: new URL(m.jwks_uri),
    requestObjectSigningAlgs: m.backchannel_authentication_request_signing_alg_values_supported,
  };
}

function requireAdvertised(list: string[] | undefined, value: string, what: string): void {
  if (list !== undefined && !list.includes(value)) {
    throw new DiscoveryError(`bank does not support ${value} (${what}: ${list.join(', ')})`);
  }
}
